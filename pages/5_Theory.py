"""Why Grad-CAM lights up what a model cannot see, on the paper's one-layer model."""
import plotly.graph_objects as go
import streamlit as st

from camlab.theory import gradcam_mass_below_wall, theory_images
from pages._shared import device, leave_folder_mode

leave_folder_mode()

st.title("Theory: a one-layer walled CNN at random initialisation")
device()
st.markdown(
    "A 29×29 grey image goes through **K 2×2 filters**, ReLU and a 2×2 max-pool to a 14×14 map; a "
    "linear layer reads that map, with **zero weights for the bottom rows**. The output cannot depend "
    "on those rows. Grad-CAM weights each filter by the *average* of its gradients — which come only "
    "from the visible rows — and then paints `ReLU(Σ weight × activation)` **everywhere**, walled rows "
    "included. Whenever a filter with a positive weight fires below the wall, Grad-CAM shows it. "
    "HiRes-CAM multiplies gradient and activation *position by position*, so below the wall it is zero."
)
filters = st.slider("Filters K", 1, 64, 8)
masked = st.slider("Walled rows (of 14)", 1, 13, 7)
trials = st.slider("Random initialisations", 10, 200, 50, step=10)
shares = gradcam_mass_below_wall(filters, masked, trials, theory_images())
st.metric("Mean Grad-CAM mass below the wall", f"{100 * float(shares.mean()):.1f}%",
          help=f"walled rows are {100 * masked / 14:.0f}% of the map")
figure = go.Figure(go.Histogram(x=(100 * shares).tolist(), nbinsx=20))
figure.update_layout(xaxis_title="% of Grad-CAM mass in walled rows", yaxis_title="initialisations", height=320)
st.plotly_chart(figure)
