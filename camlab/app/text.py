"""Strings a visitor controls (class names, file names, layer and model names, error messages that
quote them) on their way into Markdown: Streamlit renders Markdown in captions, alerts, headings,
metric and widget labels, so an unescaped ``![x](http://host/p)`` would make every visitor's
browser fetch that URL and ``:red[…]`` would style the page. :func:`escape_markdown` is the one
helper every page uses for them."""
from __future__ import annotations

import re

# GitHub's autolinks ("www.", "https://", "mailto:", "a@b.org") are found in the text after escapes
# are resolved, so escaping cannot stop them: an invisible word joiner before ":" and "@" and after
# "www" breaks each pattern without changing what the reader sees.
_AUTOLINK_PARTS = re.compile(r"(?i)(?<=www)(?=\.)|(?=[:@])")
_WORD_JOINER = "\u2060"
# Every ASCII punctuation character: CommonMark lets each be backslash-escaped, and together they
# cover Markdown's syntax and Streamlit's own (``:red[…]`` colours, ``:icon:`` shortcodes, ``$`` LaTeX).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
MAX_SHOWN_CHARS = 200


def escape_markdown(text: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` as Markdown that shows exactly its characters: control characters and line breaks
    become spaces (no new block can start), every ASCII punctuation character is backslash-escaped,
    autolinks are broken by invisible word joiners, and text longer than ``limit`` characters is cut
    with an ellipsis before escaping."""
    plain = "".join(char if char.isprintable() else " " for char in str(text))
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK_PARTS.sub(_WORD_JOINER, plain))
