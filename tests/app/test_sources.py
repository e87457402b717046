"""Where the app's models come from: uploads load, or fail with a clear message."""
import io
import re
import resource
import zipfile

import pytest
import torch

from camlab import CamlabError
from camlab.app.sources import open_shipped, open_uploaded, safe_filename
from camlab.resources import models_dir
from camlab.study.wallvgg import masked_vgg, save_checkpoint
from tests.hostile import file_writing_archive


def test_uploaded_checkpoints_load_or_fail_clearly(tmp_path):
    shipped = open_shipped("masked_vgg", "cpu")
    data = (models_dir() / "masked_vgg.pt").read_bytes()
    entry = open_uploaded(data, "masked_vgg.pt", "cpu")
    assert torch.equal(entry.unseen, shipped.unseen) and entry.key.startswith("upload:")
    with pytest.raises(CamlabError, match="not a checkpoint"):
        open_uploaded(data, "weights.txt", "cpu")
    with pytest.raises(CamlabError, match="not a PyTorch checkpoint"):
        open_uploaded(b"\x00" * 100, "model.pt", "cpu")
    scripted = tmp_path / "scripted.ts"
    torch.jit.trace(shipped.loaded.model, torch.rand(1, 3, 224, 224)).save(str(scripted))
    with pytest.raises(CamlabError, match="TorchScript"):
        open_uploaded(scripted.read_bytes(), "scripted.ts", "cpu")


@pytest.mark.parametrize("filename", ["evil.ts", "evil.pt", "resnet18_x.pth", "masked_vgg.pt"])
def test_an_uploaded_torchscript_archive_never_runs_whatever_its_name(tmp_path, filename):
    victim = tmp_path / "written-by-the-archive"
    data = file_writing_archive(tmp_path / "made.ts", victim)
    with pytest.raises(CamlabError, match="TorchScript"):
        open_uploaded(data, filename, "cpu")
    assert not victim.exists()


@pytest.mark.parametrize("filename", ["a" * 300 + ".pt", "x\x00y.pt", "../../etc/passwd.pt", "![x](http://h/p).pt",
                                      "resnet18 :red[x]\n# h.pth", ".pt", "\u00e9\u00e8" * 200 + ".pth"])
def test_any_upload_name_is_a_short_plain_file_name(filename):
    name = safe_filename(filename)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) and not name.startswith(".")
    assert name.endswith((".pt", ".pth")) or filename == ".pt"
    with pytest.raises(CamlabError, match="does not hold a state_dict|not a PyTorch checkpoint|bare state_dict|not a "
                       "checkpoint"):
        open_uploaded(b"\x00" * 64, filename, "cpu")  # the file is written and read under the safe name


def _saved(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def small_payload(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("small") / "small.pt"
    save_checkpoint(path, masked_vgg(width=1 / 64, input_size=32, masked_rows=1, hidden=8), "masked_vgg", list("abcdefgh"))
    return torch.load(path, weights_only=True)


def _zip(entries: dict[str, bytes], damage: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    return data[:-10] + b"\xff" * 10 if damage else data  # the central directory's end is overwritten


def _nan(state: dict) -> dict:
    return {k: v * float("nan") if v.is_floating_point() else v for k, v in state.items()}


# Issue 12's list: each used to escape the page as a traceback, or to allocate gigabytes.
BAD_UPLOADS = {
    "code zip": (lambda p: _zip({"a/code/model.py": b"def f(): pass", "a/data.pkl": b"x"}), "x.pt", "TorchScript"),
    "damaged zip": (lambda p: _zip({"a/data.pkl": b"x" * 100}, damage=True), "x.pt", "not a PyTorch checkpoint|damaged"),
    "no config": (lambda p: _saved({k: v for k, v in p.items() if k != "config"}), "x.pt", "without config"),
    "one class name": (lambda p: _saved({**p, "class_names": ["a"]}), "x.pt", "names 1 classes for a model with 8"),
    "no 2-D weight": (lambda p: _saved({"conv1.weight": torch.zeros(64, 3, 7, 7)}), "resnet18_x.pt", "no 2-D weight"),
    "huge hidden": (lambda p: _saved({**p, "config": {**p["config"], "hidden": 10**8}}), "x.pt",
                    "hidden must be a whole number in"),
    "large hidden, small file": (lambda p: _saved({**p, "config": {**p["config"], "hidden": 60000}}), "x.pt",
                                 "does not fit the architecture"),
    "NaN weights": (lambda p: _saved({**p, "state_dict": _nan(p["state_dict"])}), "x.pt", "NaN or infinite weights"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_every_bad_upload_the_issue_found_is_one_clear_error(small_payload, case):
    make, filename, message = BAD_UPLOADS[case]
    data = make(small_payload)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CamlabError, match=message):
        open_uploaded(data, filename, "cpu")
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 2**20  # KiB -> GiB
    assert grown < 0.5, f"refusing the upload raised the peak memory by {grown:.1f} GiB"
