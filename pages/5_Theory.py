"""Theory: why Grad-CAM lights up what a model cannot see, on the paper's one-layer model."""
import streamlit as st

from camlab.app.figures import histogram, wall_maps_figure
from camlab.app.widgets import page_setup
from camlab.study.theory import mass_below_wall, theory_images

page_setup("Theory: a one-layer walled CNN at random initialisation")
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
shares, examples = mass_below_wall(filters, masked, trials, theory_images())
gradcam, hirescam = st.columns(2)
gradcam.metric("Mean Grad-CAM mass below the wall", f"{100 * float(shares['gradcam'].mean()):.1f}%",
               help=f"walled rows are {100 * masked / 14:.0f}% of the map")
hirescam.metric("Mean HiRes-CAM mass below the wall", f"{100 * float(shares['hirescam'].mean()):.1f}%",
                help="zero by construction: the gradient is zero on every walled cell")
maps, spread = st.columns(2)
typical = "A typical initialisation (median Grad-CAM share), one image"
maps.plotly_chart(wall_maps_figure(examples, masked, typical), key="maps")
spread.plotly_chart(histogram((100 * shares["gradcam"]).tolist(), "% of Grad-CAM mass in walled rows",
                              "initialisations"), key="spread")
