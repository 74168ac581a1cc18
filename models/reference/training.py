"""A small, seeded training loop: the reference torch versions must be the same on every run."""

from __future__ import annotations

import torch
from torch import nn

from mlcanary.models.reference.dataset import FloatArray, IntArray

__all__ = ["train_net"]


def train_net(
    net: nn.Module,
    x: FloatArray,
    y: IntArray,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
) -> nn.Module:
    """Train ``net`` in place; it must have been built right after ``torch.manual_seed(seed)``
    for its initial weights to be the same on every run."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    features = torch.from_numpy(x.astype("float32"))
    labels = torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(net(features[idx]), labels[idx]).backward()
            optimizer.step()
    return net.eval()
