"""Every CAM and attribution method; importing this package registers them all.

One module per family: ``gradient`` (Grad-CAM and friends), ``activation`` (Eigen-CAM, KPCA-CAM,
FEM, the random baseline), ``perturbation`` (Score-CAM, Ablation-CAM), ``pixel`` (gradient, guided
backprop), ``conceptor`` (Conceptor-CAM), ``attention`` (LeGrad); ``combine`` holds the weighted sums and principal
projections they share. Import order is registration order, which is the order the app and
the tables list methods in.
"""
from . import gradient  # noqa: F401, I001  (registration, in listing order)
from . import activation  # noqa: F401
from . import perturbation  # noqa: F401
from . import pixel  # noqa: F401
from . import conceptor  # noqa: F401
from . import attention  # noqa: F401

# The six CAMs that one shared forward (and backward) serves; the benchmark times them together.
SHARED_PASS_CAMS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam")
