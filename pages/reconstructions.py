import streamlit as st

st.title("reconstructions")
st.info("This page is being built.")
