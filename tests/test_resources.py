"""camlab.resources and camlab-app: the shipped files are found through the package, as a wheel finds them."""
import tomllib

import pytest

from camlab import CamlabError
from camlab.app.launch import server_command, server_flags
from camlab.resources import MODELS_ENV, app_script, models_dir, results_dir, shipped_dir
from tests.paths import ROOT


@pytest.mark.parametrize(("shipped", "checkout"), [("models", "models"), ("results", "docs/results"), ("app.py", "app.py"),
                                                   ("pages", "pages"), ("streamlit.toml", ".streamlit/config.toml")])
def test_the_package_data_is_the_checkout_s_files(shipped, checkout):
    assert (shipped_dir() / shipped).resolve() == (ROOT / checkout).resolve()


def test_models_and_results_are_found_through_the_package(monkeypatch):
    monkeypatch.delenv(MODELS_ENV, raising=False)
    assert sorted(p.name for p in models_dir().glob("*.pt")) == sorted(p.name for p in (ROOT / "models").glob("*.pt"))
    assert (results_dir() / "guided_sweep.csv").is_file()
    assert app_script().name == "app.py" and (app_script().parent / "pages").is_dir()


def test_the_models_setting_names_another_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert models_dir() == tmp_path


def test_a_package_without_its_shipped_files_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr("camlab.resources.files", lambda _: tmp_path)
    with pytest.raises(CamlabError, match="shipped files are missing"):
        shipped_dir()


def test_camlab_app_passes_every_server_setting_as_a_flag():
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    flags = server_flags()
    assert len(flags) == sum(len(v) for v in settings.values())
    assert "--server.fileWatcherType=none" in flags and "--server.maxUploadSize=600" in flags
    assert "--client.showSidebarNavigation=false" in flags  # booleans as Streamlit spells them
    command = server_command("--server.port", "8600")
    assert command[2:5] == ["streamlit", "run", str(app_script())] and command[-2:] == ["--server.port", "8600"]
