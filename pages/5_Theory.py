"""Theory: why Grad-CAM lights up what a model cannot see, at random initialisation: the paper's
one-layer model, and real architectures walled at their default layer."""
import streamlit as st

from camlab import CamlabError
from camlab.app.figures import bar_chart, histogram, wall_maps_figure
from camlab.app.theory import LIVE_SEEDS
from camlab.app.widgets import page_setup, show_error, walls_at_init
from camlab.study.at_init import AT_INIT_ARCHITECTURES
from camlab.study.theory import mass_below_wall, theory_images

ONE_LAYER = "the paper's one-layer CNN"

page_setup("Theory: walled networks at random initialisation")
network = st.radio("Network", [ONE_LAYER, *AT_INIT_ARCHITECTURES], horizontal=True,
                   help="the paper's analysis is on a one-layer CNN; the others are torchvision's architectures")

if network == ONE_LAYER:
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
    st.stop()

st.markdown(
    f"**{network}** with random weights (a head torchvision starts at zero drawn at random), walled at its "
    "default layer with the paper's wall: the cells (a ViT's patch tokens, Swin's grid) under the bottom 9/14 of "
    "the image are zeroed *after* the layer, so nothing downstream reads them and any share of a map there is "
    "leakage. Each method explains the walled network's top class on the eight sample photographs; leakage is the "
    "L2 share of its ReLU'd, min-max map on the walled cells. The controls know nothing of the network: a method "
    "that scores like them paints the wall as if it were not there."
)
seeds = st.slider("Random initialisations", 1, LIVE_SEEDS, 4,
                  help="each one a fresh network; README's table has 16 (`camlab-table1 --at-init`)")
try:
    view = walls_at_init(network, seeds)
except CamlabError as exc:
    show_error(exc)
    st.stop()
gradcam, hirescam, ones = st.columns(3)
gradcam.metric("Grad-CAM leakage", f"{view.rows['gradcam'][0]:.3f}", help=f"± {view.rows['gradcam'][1]:.3f} (std)")
hirescam.metric("HiRes-CAM leakage", f"{view.rows['hirescam'][0]:.3f}",
                help="zero by construction: the gradient is zero on every walled cell")
ones.metric("All-ones control", f"{view.rows['control: all-ones'][0]:.3f}",
            help=f"√ of the walled share: {view.walled_rows} of {view.grid[0]} rows of a {view.grid[0]}×{view.grid[1]} grid")
maps, bars = st.columns(2)
maps.plotly_chart(wall_maps_figure(view.examples, view.walled_rows, "First initialisation, first photograph"),
                  key="maps")
means = {row: mean for row, (mean, _) in view.rows.items() if not row.endswith("(matched)")}
bars.plotly_chart(bar_chart(means, f"Leakage on the walled cells ({view.samples} maps each)"), key="bars")
st.dataframe([{"row": row, "mean": round(mean, 3), "std": round(std, 3)} for row, (mean, std) in view.rows.items()],
             hide_index=True)
