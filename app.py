"""Latent Lab: `streamlit run app.py`. Navigation and the sidebar model picker shared by every page."""

import streamlit as st

import ui

st.set_page_config(page_title="Latent Lab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon="🏠", default=True),
    st.Page("views/train.py", title="Train", icon="🏋️"),
    st.Page("views/loss_curves.py", title="Loss curves", icon="📉"),
    st.Page("views/reconstructions.py", title="Reconstructions", icon="🔁"),
    st.Page("views/latent_map.py", title="Latent map", icon="🗺️"),
    st.Page("views/generate.py", title="Generate", icon="🎛️"),
    st.Page("views/upload.py", title="Upload & draw", icon="✏️"),
    st.Page("views/explain.py", title="Explain", icon="🔬"),
    st.Page("views/compare.py", title="Compare", icon="⚖️"),
]

navigation = st.navigation(PAGES)
st.session_state[ui.SUMMARY_KEY] = ui.sidebar_model_picker()
if navigation.title != "Home":  # Home reads only JSON and shows at once; the other pages need the libraries
    ui.wait_for_warm_up()
navigation.run()
# Once the page is drawn: PyTorch, scikit-learn, plotly and UMAP's compiler load on a background
# thread (once per server process), so the first visitor's page does not compete with them.
ui.warm_up()
