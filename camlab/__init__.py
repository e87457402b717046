"""camlab: class-activation-map explanations, walls, and faithfulness metrics.

The library: ``explain`` / ``CAMEngine`` (one shared forward/backward for every gradient method),
the method registry, maps, metrics (``camlab.metrics``), walls (``camlab.walls``), models and
exports. ``camlab.study`` holds the paper study and ``camlab.app`` the Streamlit app's layer;
neither is imported here.
"""
from . import methods  # noqa: F401  (registers every method)
from .device import resolve_device
from .engine import CAMEngine, CAMMap, Explanation, explain
from .errors import CamlabError
from .registry import REGISTRY, Cost, Family, MethodInfo, get_method, list_methods, register_method

__all__ = [
    "CAMEngine", "CAMMap", "CamlabError", "Cost", "Explanation", "Family", "MethodInfo",
    "REGISTRY", "explain", "get_method", "list_methods", "register_method", "resolve_device",
]
__version__ = "0.2.0"
