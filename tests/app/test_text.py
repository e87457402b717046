"""The one escaping helper for visitor strings on their way into Markdown."""
import re

from hypothesis import given
from hypothesis import strategies as st

from camlab.app.text import escape_markdown
from tests.hostile import HOSTILE_NAMES


def _shown(markdown: str) -> str:
    """What a reader sees: escapes resolved, word joiners invisible."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


@given(st.text(max_size=300))
def test_escaped_text_shows_exactly_its_printable_characters(text):
    escaped = escape_markdown(text, limit=1000)
    expected = "".join(c if c.isprintable() else " " for c in text)
    assert _shown(escaped) == expected
    # no ASCII punctuation is left unescaped, and nothing can start a new block
    assert not re.search(r"(?<!\\)[!-/:-@\[-`{-~]", re.sub(r"\\.", "", escaped))
    assert "\n" not in escaped and "\r" not in escaped


def test_hostile_names_lose_their_syntax_and_long_names_are_cut():
    for name in HOSTILE_NAMES:
        escaped = escape_markdown(name)
        assert "![" not in escaped and "](" not in escaped and ":red[" not in escaped and "$\\int" not in escaped
        assert "http\u2060\\:" in escaped or "http" not in name  # GitHub's autolinks need "http:" in one piece
    long = escape_markdown("a" * 500)
    assert len(long) == 200 and long.endswith("…")
    assert escape_markdown("www.x.org me@x.org") == "www\u2060\\.x\\.org me\u2060\\@x\\.org"
