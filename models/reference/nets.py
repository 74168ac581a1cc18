"""The digits networks: ordinary user code as far as mlcanary is concerned.

The CNN is registered as a ``torch.export`` program, the MLP as a safetensors ``state_dict`` with
its class named by import path (``mlcanary.models.reference.nets:DigitsMLP``) and its arguments:
one reference version for each of the two PyTorch formats.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from mlcanary.models.reference.dataset import N_CLASSES, N_FEATURES

__all__ = ["DigitsCNN", "DigitsMLP"]


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int = 128, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = N_FEATURES
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, N_CLASSES))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.body(x / 16.0))


class DigitsCNN(nn.Module):
    """Two small convolutions over the 8x8 image: spatial structure is what lifts accuracy."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels * 2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(channels * 2 * 16, N_CLASSES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.head(self.features(x.view(-1, 1, 8, 8) / 16.0)))
