"""Driving the app with Streamlit's AppTest: open a page, find widgets by label, make test images."""
import io
import re

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.paths import ROOT

APP = str(ROOT / "app.py")


def _page(name: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300).run()
    if name:
        app.switch_page(f"pages/{name}.py").run()
    assert not app.exception, app.exception
    return app


def _png(mode: str, size=(300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 4), dtype=np.uint8),
                    "RGBA").convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _shown(markdown: str) -> str:
    """What a reader sees of Markdown the app escaped (camlab.app.text.escape_markdown)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def _leakage(app: AppTest) -> dict[str, float]:
    return {m.label.split()[0]: float(m.value) for m in app.metric if "leakage" in m.label}


def _sidebar_radio(app: AppTest, label: str):
    return next(r for r in app.sidebar.radio if r.label == label)


def _uploader(app: AppTest, label: str):
    return next(u for u in app.sidebar.file_uploader if u.label == label)
