"""``camlab-app``: the Streamlit app from wherever camlab is installed, with the project's server settings.

In a checkout ``make app`` (``streamlit run app.py``) does the same; from an installed wheel there is no
``.streamlit/config.toml`` in the working directory, so its settings travel as command-line flags.
"""
from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Sequence

from ..resources import app_script, shipped_dir


def server_flags() -> list[str]:
    """The shipped ``streamlit.toml`` as ``--section.key=value`` flags (flags win over any config file)."""
    settings = tomllib.loads((shipped_dir() / "streamlit.toml").read_text())
    return [f"--{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
            for section, values in settings.items() for key, value in values.items()]


def server_command(*extra: str) -> list[str]:
    """The command that serves the app; ``extra`` flags (a port, an address) come last and win."""
    return [sys.executable, "-m", "streamlit", "run", str(app_script()), *server_flags(), *extra]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the app; any arguments are passed on to ``streamlit run`` (e.g. ``--server.port 8600``)."""
    return subprocess.call(server_command(*(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
