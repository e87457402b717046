import os
import warnings

import pytest
import torch
import torchvision
from hypothesis import settings

warnings.filterwarnings("ignore", category=UserWarning)


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
