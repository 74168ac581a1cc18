"""The user's own network, in the user's own module: not part of mlcanary.

A small convolutional network over 1x8x8 images (the digits set as images) with ten classes.
Served from a safetensors ``state_dict``, it is built from this class, which mlcanary imports by
its path (``net:Net``) where the version is served; served as a ``torch.export`` program, it
needs no Python class at all.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head = nn.Linear(channels * 16, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.head(self.features(images / 16.0).flatten(1)))
