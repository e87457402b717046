"""camlab: class-activation-map explanations, walls, and faithfulness metrics."""
from .device import resolve_device
from .engine import CAMEngine, CAMMap, Explanation, explain
from .errors import CamlabError
from .registry import REGISTRY, Cost, Family, MethodInfo, get_method, list_methods

__all__ = [
    "CAMEngine", "CAMMap", "CamlabError", "Cost", "Explanation", "Family", "MethodInfo",
    "REGISTRY", "explain", "get_method", "list_methods", "resolve_device",
]
__version__ = "0.1.0"
