"""The three layers, checked from the source: what each part of camlab may import.

library (camlab/*, camlab/methods, metrics, walls)  -> torch & co. only, never study/app/bench
study   (camlab/study)                              -> the library, never app/bench or Streamlit
audit   (camlab/audit)                              -> the library and the study, never app/bench or Streamlit
app     (camlab/app)                                -> library, study and audit, Streamlit, never bench
bench   (camlab/bench)                              -> anything, including the peers
pages   (app.py, pages/)                            -> camlab.app for state; no locks, autograd or cache keys
"""
import ast
import subprocess
import sys

import pytest

from tests.paths import ROOT

PACKAGE = ROOT / "camlab"
PEERS = {"pytorch_grad_cam", "captum", "torchcam", "playwright", "hypothesis"}
LAYERS = {"study": "camlab.study", "audit": "camlab.audit", "app": "camlab.app", "bench": "camlab.bench"}
FORBIDDEN = {
    "library": PEERS | {"streamlit", "streamlit_drawable_canvas", "plotly", "altair", "camlab.study", "camlab.audit",
                        "camlab.app", "camlab.bench", "timm"},
    "study": PEERS | {"streamlit", "streamlit_drawable_canvas", "plotly", "altair", "camlab.audit", "camlab.app",
                      "camlab.bench"},
    "audit": PEERS | {"streamlit", "streamlit_drawable_canvas", "plotly", "altair", "camlab.app", "camlab.bench"},
    "app": PEERS | {"camlab.bench"},
    "bench": set(),
}


def _layer(path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if parts[0] in LAYERS else "library"


def _imports(path) -> set[str]:
    """Absolute names of every module a file imports, at any depth (relative imports resolved)."""
    module = "camlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = f"{base}.{node.module}" if base and node.module else (node.module or base)
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


# camlab/shipped holds links to app.py and pages/ (package data), checked as pages below.
@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if PACKAGE / "shipped" not in p.parents),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_each_layer_imports_only_what_it_may(path):
    layer = _layer(path)
    bad = {name for name in _imports(path)
           for banned in FORBIDDEN[layer] if name == banned or name.startswith(banned + ".")}
    assert not bad, f"{layer} module imports {sorted(bad)}"


def test_the_library_imports_with_streamlit_and_the_peers_absent():
    blocked = ", ".join(repr(name) for name in sorted(PEERS | {"streamlit", "plotly"}))
    code = (f"import sys\nfor name in [{blocked}]:\n    sys.modules[name] = None\n"
            "import camlab, camlab.metrics, camlab.walls, camlab.evaluation, camlab.export, camlab.images, "
            "camlab.models, camlab.render, camlab.study, camlab.study.train, camlab.study.evaluate\n"
            "print(len(camlab.list_methods()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 12


PAGE_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_pages_hold_presentation_only(path):
    source = path.read_text()
    names = _imports_of_page(source)
    assert not {n for n in names if n.startswith("torch")}, "pages do no tensor work; camlab.app does"
    for marker in (".lock", "autograd", "digest(", "streamlit.runtime", "PagesManager", "LoadedModel("):
        assert marker not in source, f"{path.name} uses {marker!r}: that belongs in camlab.app"


def _imports_of_page(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names
