"""Latent Lab: `streamlit run app.py`. Navigation and the sidebar model picker shared by every page."""

import streamlit as st

import pages
import ui

st.set_page_config(page_title="Latent Lab", page_icon="🧪", layout="wide")

navigation = pages.navigation()
st.session_state[ui.SUMMARY_KEY] = ui.sidebar_model_picker()
if navigation.title != pages.HOME.title:  # Home reads only JSON and shows at once; the other pages need the libraries
    ui.wait_for_warm_up()
navigation.run()
# Once the page is drawn: PyTorch, scikit-learn, plotly and UMAP's compiler load on a background
# thread (once per server process), so the first visitor's page does not compete with them.
ui.warm_up()
