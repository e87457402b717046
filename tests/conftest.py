import os
import tempfile
import urllib.error
import urllib.request
import warnings

import pytest
import torch
import torchvision
from hypothesis import settings

warnings.filterwarnings("ignore", category=UserWarning)

# Tests never download: torch's cache is an empty temporary folder, and opening a URL fails at once
# the way an offline machine does (tests that check downloads install their own fake).
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="camlab-torch-home-")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("the test suite is offline")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _seeded(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None).eval()


@pytest.fixture(scope="session")
def vgg16():
    return _seeded("vgg16")


@pytest.fixture(scope="session")
def resnet18():
    return _seeded("resnet18")


@pytest.fixture(scope="session")
def images64():
    torch.manual_seed(1)
    return torch.randn(4, 3, 64, 64)


# Property-based fuzzing (tests/test_fuzz.py): a fixed, quick set of examples in CI; `make fuzz`
# (CAMLAB_FUZZ=thorough) draws many more, at random.
settings.register_profile("ci", max_examples=30, derandomize=True, database=None, print_blob=True)
settings.register_profile("thorough", max_examples=400, database=None, print_blob=True)
settings.load_profile(os.environ.get("CAMLAB_FUZZ", "ci"))
