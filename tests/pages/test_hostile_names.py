"""Every page that shows a visitor's strings (an uploaded checkpoint's class names and file name, an
uploaded image's name, a typed layer name) shows them as plain text: no Markdown image, link,
colour, icon, LaTeX or emphasis from the input survives (Streamlit's own rendering of the escaped
text is checked in Chromium: tests/test_browser.py)."""
import re

import pytest

from camlab.app.text import escape_markdown
from tests.hostile import HOSTILE_CLASS_NAMES, hostile_checkpoint
from tests.pages.apptest import _page, _png, _sidebar_radio, _uploader

SYNTAX = ["![", "](", ":red[", ":blue-background[", ":material/", ":smile:", "$", "**bold**", "_it_", "`code`", "<img",
          "http:", "javascript:"]


def _live(markdown: str) -> str:
    """The Markdown with every escaped character removed: what is left is syntax Markdown would act on."""
    return re.sub(r"\\.", "", markdown)


def _markdown_texts(app) -> list[str]:
    texts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success", "subheader", "title",
                                  "header") for e in getattr(app, kind)]
    return texts + [m.label for m in app.metric] + [str(m.value) for m in app.metric]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return hostile_checkpoint(tmp_path_factory.mktemp("hostile") / "model.pt")


def _upload_everything(app, checkpoint: bytes):
    _sidebar_radio(app, "Model source").set_value("upload").run()
    _uploader(app, "Checkpoint (.pt, .pth)").set_value(("![x](http://127.0.0.1:9/p) :red[m].pt", checkpoint,
                                                         "application/octet-stream")).run()
    _sidebar_radio(app, "Image").set_value("upload").run()
    _uploader(app, "PNG, JPEG or WebP").set_value(("[i](http://127.0.0.1:9/) $x$.png", _png("RGB"), "image/png")).run()
    assert not app.exception, app.exception


@pytest.mark.parametrize("page", [None, "2_Walls"])
def test_hostile_class_and_file_names_reach_the_page_only_as_plain_text(checkpoint, page):
    app = _page(page)
    _upload_everything(app, checkpoint)
    texts = _markdown_texts(app)
    shown = " ".join(texts)
    assert any(escape_markdown(name) in shown for name in HOSTILE_CLASS_NAMES), "no class name reached the page"
    for text in texts:
        live = _live(text)
        assert not [token for token in SYNTAX if token in live], text
    if page is None:  # Explore's caption names the model and the image: both files' names, made plain
        caption = next(c.value for c in app.caption if c.value.startswith("Model ")).replace("\\", "")
        assert "Model **p___red_m_**" in caption and "image: upload ___x_.png" in caption  # last path parts, plain
        app.sidebar.text_input[0].set_value("features.1 ![y](http://127.0.0.1:9/y)").run()
        assert not app.exception and "a layer name is a dotted module name" in app.error[0].value
        assert not [token for token in SYNTAX if token in _live(app.error[0].value)]
