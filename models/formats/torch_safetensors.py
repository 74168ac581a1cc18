"""PyTorch modules as a safetensors state_dict plus an architecture config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mlcanary.gpu.device import select_torch_device
from mlcanary.models.formats.base import SavedArtifact
from mlcanary.models.predictor import FloatArray, IntArray, Predictor
from mlcanary.models.torch_nets import build_net

__all__ = ["SafetensorsFormat"]

ARTIFACT_NAME = "model.safetensors"


class _TorchPredictor:
    def __init__(self, net: torch.nn.Module, device: str) -> None:
        self._net = net.to(device).eval()
        self._device = device

    @property
    def device(self) -> str:
        return self._device

    def predict(self, rows: FloatArray) -> IntArray:
        with torch.inference_mode():
            batch = torch.from_numpy(rows.astype(np.float32, copy=False)).to(self._device)
            labels = self._net(batch).argmax(dim=1)
        return np.asarray(labels.cpu().numpy(), dtype=np.int64)


class SafetensorsFormat:
    framework = "torch"

    def save(self, model: Any, directory: Path) -> SavedArtifact:
        net, architecture = model
        path = directory / ARTIFACT_NAME
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(path))
        return SavedArtifact(path, {"architecture": dict(architecture)})

    def wrap(self, model: Any) -> Predictor:
        net, _ = model
        return _TorchPredictor(net, "cpu")

    def load(
        self, path: Path, load_options: Mapping[str, Any], device_preference: str
    ) -> Predictor:
        net = build_net(load_options["architecture"])
        net.load_state_dict(load_file(str(path), device="cpu"), strict=True)
        return _TorchPredictor(net, select_torch_device(device_preference))
