"""Where the app's models come from: uploads load, or fail with a clear message."""
import pytest
import torch

from camlab import CamlabError
from camlab.app.sources import MODELS_DIR, open_shipped, open_uploaded


def test_uploaded_checkpoints_load_or_fail_clearly(tmp_path):
    shipped = open_shipped("masked_vgg", "cpu")
    data = (MODELS_DIR / "masked_vgg.pt").read_bytes()
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
