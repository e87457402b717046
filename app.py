"""camlab: the Streamlit app's entry point; opens on Explore with the shipped masked VGG."""
import streamlit as st

st.set_page_config(page_title="camlab", layout="wide")
navigation = st.navigation([
    st.Page("pages/1_Explore.py", title="Explore", icon="🔍", default=True),
    st.Page("pages/2_Walls.py", title="Walls", icon="🧱"),
    st.Page("pages/3_Benchmark.py", title="Benchmark", icon="📊"),
    st.Page("pages/4_Training.py", title="Training", icon="🎓"),
    st.Page("pages/5_Theory.py", title="Theory", icon="📐"),
])
navigation.run()
