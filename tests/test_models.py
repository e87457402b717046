"""Model files and torchvision models: state_dicts by name, TorchScript refused, weights offline."""
import hashlib
import io
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision

import camlab
import camlab.models
from camlab.errors import CamlabError
from camlab.models import (
    archive_kind,
    download_torchvision_weights,
    load_model_file,
    load_torchvision,
    random_torchvision,
    torchvision_weights_path,
)
from camlab.study.wallvgg import load_checkpoint, masked_vgg
from tests.hostile import file_writing_archive


def test_user_state_dict_loads_and_torchscript_only_when_trusted(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save(net.state_dict(), tmp_path / "resnet18_finetuned.pt")
    loaded = load_model_file(tmp_path / "resnet18_finetuned.pt")
    assert loaded.architecture == "resnet18" and len(loaded.class_names) == 3
    scripted = torch.jit.trace(masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval(), torch.rand(1, 3, 32, 32))
    scripted.save(str(tmp_path / "model.ts"))
    with pytest.raises(CamlabError, match="is a TorchScript archive. Loading one runs the code"):
        load_model_file(tmp_path / "model.ts")
    trusted = load_model_file(tmp_path / "model.ts", trusted=True)
    assert trusted.model(torch.rand(1, 3, 32, 32)).shape == (1, 8)
    with pytest.raises(CamlabError, match="TorchScript model: its layers cannot be hooked"):
        camlab.explain(trusted.model, torch.rand(1, 3, 32, 32), ["gradcam"])


@pytest.mark.parametrize("name", ["evil.ts", "evil.pt", "resnet18_x.pth", "masked_vgg"])
def test_a_torchscript_archive_that_writes_a_file_is_refused_by_content_before_it_runs(tmp_path, name):
    victim = tmp_path / "written-by-the-archive"
    archive = tmp_path / name
    file_writing_archive(tmp_path / "made.ts", victim)
    (tmp_path / "made.ts").rename(archive)
    assert archive_kind(archive) == "torchscript"
    with pytest.raises(CamlabError, match="TorchScript archive"):
        load_checkpoint(archive)
    assert not victim.exists()
    load_model_file(archive, trusted=True)  # the archive really does write the file when it is trusted
    assert victim.exists()


def test_legacy_files_and_zip_bombs_are_refused_before_torch_load(tmp_path, monkeypatch):
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", b"\0" * (3 * 2**20))  # 3 MiB of zeros packs into a few KiB
    monkeypatch.setattr(camlab.models, "MAX_UNPACKED_BYTES", 2**20)
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(CamlabError, match="not a PyTorch checkpoint in torch.save's zip format"):
        load_model_file(legacy)
    with pytest.raises(CamlabError, match="declares 3 MiB of unpacked data; the limit is 1 MiB"):
        load_model_file(bomb)
    assert bomb.stat().st_size < 2**20 and not loads
    monkeypatch.undo()
    with pytest.raises(CamlabError, match="bare state_dict"):  # trusted, the legacy file is read
        load_model_file(legacy, trusted=True)


def test_offline_the_message_names_the_file_and_the_command_that_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert torchvision_weights_path("resnet18") == target
    with pytest.raises(CamlabError, match=f"could not be downloaded .*curl -L --create-dirs -o {target} https://"):
        load_torchvision("resnet18")
    with pytest.raises(CamlabError, match="downloads are off"):
        load_torchvision("resnet18", allow_download=False)
    random = load_torchvision("resnet18", pretrained=False)
    assert random.model(torch.rand(1, 3, 64, 64)).shape == (1, 1000) and random.card["weights"].startswith("random")


def test_random_weights_are_the_same_on_every_load_and_leave_the_callers_generator_alone():
    state = torch.random.get_rng_state()
    first, second = (load_torchvision("resnet18", pretrained=False).model for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def _weights_file(arch: str) -> bytes:
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(torchvision.models.get_model(arch, weights=None).state_dict(), buffer)
    return buffer.getvalue()


def test_weights_in_the_cache_load_through_torchvisions_own_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    data = _weights_file("resnet18")
    torchvision_weights_path("resnet18").parent.mkdir(parents=True)
    torchvision_weights_path("resnet18").write_bytes(data)
    with pytest.raises(CamlabError, match="resnet18-f37072fd.pth does not match its checksum .* delete it"):
        load_torchvision("resnet18")  # made here from random weights: not torchvision's file
    monkeypatch.setattr(camlab.models, "file_sha256", lambda path: "f37072fd" + "0" * 56)  # taken as genuine
    loaded = load_torchvision("resnet18")
    reference = torch.load(io.BytesIO(data), weights_only=True)
    assert torch.equal(loaded.model.fc.weight, reference["fc.weight"])
    assert loaded.class_names[1] == "goldfish" and loaded.card["weights"].startswith("ImageNet")
    torchvision_weights_path("resnet18").write_bytes(data[: len(data) // 3])  # damaged
    with pytest.raises(CamlabError, match="resnet18-f37072fd.pth is damaged .* delete it"):
        load_torchvision("resnet18")


class _Response(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_online_the_weights_download_with_progress_and_a_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    data = _weights_file("resnet18")
    served = {}

    def fake_urlopen(url, timeout):
        served["url"] = url
        return _Response(data)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    seen = []
    with pytest.raises(CamlabError, match="does not match its checksum"):  # random weights are not the real file
        download_torchvision_weights("resnet18", lambda done, total: seen.append((done, total)))
    assert served["url"].endswith("resnet18-f37072fd.pth") and seen[-1] == (len(data), len(data))
    assert not torchvision_weights_path("resnet18").exists()  # nothing half-written is left behind
    expected = hashlib.sha256(data).hexdigest()[:8]
    monkeypatch.setattr(camlab.models, "torchvision_weights_path",
                        lambda arch: tmp_path / "hub" / "checkpoints" / f"resnet18-{expected}.pth")
    path = download_torchvision_weights("resnet18")
    assert path.read_bytes() == data


def test_camlab_is_installed_with_its_commands(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import camlab, sys; print(camlab.__file__)"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, "import camlab must work from any directory (make installs it editable)"
    commands = Path(sys.executable).parent
    for command in ("camlab-train", "camlab-evaluate", "camlab-table1", "camlab-bench", "camlab-bench-app"):
        help_text = subprocess.run([str(commands / command), "--help"], cwd=tmp_path, capture_output=True, text=True,
                                   timeout=120)
        assert help_text.returncode == 0 and "usage" in help_text.stdout


def test_common_checkpoint_layouts_load_and_a_pickled_model_is_explained(tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    state = net.state_dict()
    layouts = {"model": {"model": state, "epoch": 3}, "state_dict": {"state_dict": state, "optimizer": {"lr": 0.1}},
               "dataparallel": {"state_dict": {f"module.{k}": v for k, v in state.items()}}}
    for name, payload in layouts.items():
        torch.save(payload, tmp_path / f"resnet18_{name}.pt")
        loaded = load_model_file(tmp_path / f"resnet18_{name}.pt")
        assert torch.equal(loaded.model.fc.weight, state["fc.weight"]), name
    torch.save(net, tmp_path / "resnet18_whole.pt")
    with pytest.raises(CamlabError) as error:
        load_model_file(tmp_path / "resnet18_whole.pt")
    message = str(error.value)
    assert "holds a whole pickled model (torchvision.models.resnet.ResNet)" in message and "state_dict()" in message
    assert "\x1b" not in message  # no terminal colour codes


def test_imagenet_models_name_their_classes_even_with_random_weights(tmp_path):
    assert load_torchvision("resnet18", pretrained=False).class_names[1] == "goldfish"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18_mine.pt")
    assert load_model_file(tmp_path / "resnet18_mine.pt").class_names[1] == "goldfish"


def test_a_random_vit_reads_its_input_though_torchvision_starts_its_head_at_zero():
    vit = load_torchvision("vit_b_16", pretrained=False).model
    with torch.no_grad():
        first, second = vit(torch.rand(2, 3, 224, 224))
    assert not torch.allclose(first, second)
    assert random_torchvision("vit_b_16", 0).state_dict().keys() == torchvision.models.vit_b_16().state_dict().keys()
