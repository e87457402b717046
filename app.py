"""camlab: the Streamlit app's entry point; opens on Explore with the shipped masked VGG."""
import streamlit as st

st.set_page_config(page_title="camlab", layout="wide")
navigation = st.navigation([
    st.Page("pages/1_Explore.py", title="Explore", icon=":material/search:", default=True),
    st.Page("pages/2_Walls.py", title="Walls", icon=":material/grid_on:"),
    st.Page("pages/3_Benchmark.py", title="Benchmark", icon=":material/bar_chart:"),
    st.Page("pages/4_Training.py", title="Training", icon=":material/school:"),
    st.Page("pages/5_Theory.py", title="Theory", icon=":material/functions:"),
])
navigation.run()
