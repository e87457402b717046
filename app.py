"""camlab: the Streamlit app's entry point; opens on Explore with the shipped masked VGG."""
import streamlit as st

from pages._shared import navigation

st.set_page_config(page_title="camlab", layout="wide")
navigation().run()
