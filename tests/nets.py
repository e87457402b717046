"""Small networks the tests explain: fast on a CPU, with known structure."""
import torch
import torch.nn.functional as F
from torch import nn


class TinyNet(nn.Module):
    """Small CNN; ``functional=True`` uses F.relu instead of ReLU modules, same maths."""

    def __init__(self, functional=False, dead_channels=0):
        super().__init__()
        torch.manual_seed(0)
        self.functional = functional
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)
        if dead_channels:
            with torch.no_grad():
                self.conv2.bias[:dead_channels] = -1e4

    def forward(self, x):
        act = (lambda t: F.relu(t, inplace=True)) if self.functional else None
        x = act(self.conv1(x)) if act else self.relu1(self.conv1(x))
        x = F.relu(self.conv2(x)) if act else self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class SkipNet(TinyNet):
    """A skip connection around conv2, so the model cannot be split after relu2."""

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        y = self.relu2(self.conv2(h))
        return self.fc(torch.flatten(self.pool(y + h.repeat(1, 2, 1, 1)), 1))


class QuadrantModel(nn.Module):
    """Class 0's logit counts bright pixels in the top-left quadrant: blurring or zeroing them
    removes the evidence, nothing else matters."""

    def forward(self, x):
        top_left = (x[:, :, :8, :8] - 0.5).clamp(min=0).mean(dim=(1, 2, 3))
        return torch.stack([20 * top_left, torch.zeros_like(top_left)], dim=1)

