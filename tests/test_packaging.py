"""pyproject.toml and the pinned requirement files name the same packages, so neither drifts from the other."""
import re
import tomllib

from tests.paths import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    names = {re.split(r"[<>=\[ ;]", line.strip(), maxsplit=1)[0].lower().replace("_", "-") for line in requirements}
    return {n for n in names if n and not n.startswith(("#", "-"))}


def _pinned(path: str) -> set[str]:
    return _names((ROOT / path).read_text().splitlines())


def test_requirements_pin_exactly_the_library_the_app_and_timm():
    extras = PROJECT["optional-dependencies"]
    assert _pinned("requirements.txt") == _names(PROJECT["dependencies"] + extras["app"] + extras["timm"])


def test_requirements_dev_pins_exactly_the_dev_extra():
    extras = PROJECT["optional-dependencies"]
    declared = _names([r for r in extras["dev"] if not r.startswith("camlab[")])
    assert _pinned("requirements-dev.txt") == declared
    assert "camlab[app,timm]" in extras["dev"]  # the dev extra includes the app and timm


def test_the_version_has_one_home():
    import camlab

    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert re.fullmatch(r"\d+\.\d+\.\d+", camlab.__version__)
