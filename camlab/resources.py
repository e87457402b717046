"""What camlab ships beside its code, found the same way in a checkout and in an installed wheel.

``camlab/shipped`` holds the shipped checkpoints (``models/``), the measured results the app shows
(``results/``), the app itself (``app.py``, ``pages/``) and its server settings (``streamlit.toml``).
In a checkout these are links to the top-level ``models/``, ``docs/results/``, ``app.py``, ``pages/`` and
``.streamlit/config.toml``; a built wheel carries copies as package data. One setting moves the
checkpoints elsewhere: the ``CAMLAB_MODELS`` environment variable names a folder of camlab checkpoints
(for models you trained yourself).
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from .errors import CamlabError

MODELS_ENV = "CAMLAB_MODELS"


def shipped_dir() -> Path:
    """The folder of camlab's shipped files (package data; see the module docstring)."""
    folder = Path(str(files("camlab") / "shipped"))
    if not (folder / "app.py").is_file():
        raise CamlabError(f"camlab's shipped files are missing from {folder}: reinstall camlab, or in a checkout on a "
                          "system without symbolic links, run camlab from the checkout's top level")
    return folder


def models_dir() -> Path:
    """Where the shipped checkpoints are: ``$CAMLAB_MODELS``, else the package's ``shipped/models``."""
    return Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV) else shipped_dir() / "models"


def results_dir() -> Path:
    """The measured results the app's pages show (README's tables come from the same files)."""
    return shipped_dir() / "results"


def app_script() -> Path:
    """The Streamlit app's main page; its other pages are in ``pages/`` beside it."""
    return shipped_dir() / "app.py"
