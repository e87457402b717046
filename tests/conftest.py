import warnings

import pytest
import torch
import torchvision

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
