"""What the two PyTorch formats share: calling a network on a batch, and what it says of itself.

A network computes in the dtype of its weights (float32, usually): a request's numbers are
checked against that dtype, not the wider one an example may have had, so a value that would
overflow it is refused with a 4xx instead of turning into an infinity inside the model. Its
output is class scores (logits) for a classifier, softmaxed by the version's output spec, or the
regression values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mlcanary.models.formats.base import Described, FormatError
from mlcanary.models.schema import Batch
from mlcanary.models.task import RawOutput, RegressionOutput

__all__ = ["TorchRunner", "describe_network", "example_tensor", "is_torch_model", "network_dtype"]


def is_torch_model(model: Any) -> bool:
    """Whether ``model`` is a torch object, without importing torch for a model that is not."""
    return "torch" in sys.modules and isinstance(
        model, torch.nn.Module | torch.export.ExportedProgram
    )


def network_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a network's weights (float32 when it has none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def example_tensor(example: Batch | None, dtype: torch.dtype) -> torch.Tensor:
    """The example as the network takes it, with at least two rows: torch.export fixes a
    dimension whose example size is 1, and the batch dimension must stay free."""
    if example is None or isinstance(example, dict):
        raise FormatError("a PyTorch network is registered from an example tensor (example=...)")
    tensor = torch.from_numpy(np.ascontiguousarray(example))
    if tensor.is_floating_point():
        tensor = tensor.to(dtype)
    if tensor.shape[0] < 2:
        tensor = torch.cat([tensor, tensor])
    return tensor


def _first(output: Any) -> torch.Tensor:
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise FormatError(f"the network returned {type(output).__name__}, not a tensor")
    return output


def describe_network(module: torch.nn.Module, example: Batch | None) -> Described:
    """A network cannot say whether it classifies; it says its dtype, and with an example, how
    many scores or values it gives per row (the classes, when they are its output's indices)."""
    dtype = network_dtype(module)
    float_dtype = str(dtype).removeprefix("torch.")
    if example is None or isinstance(example, dict):
        return Described(float_dtype=float_dtype)
    with torch.inference_mode():
        output = _first(module(example_tensor(example, dtype)))
    width = output.shape[1] if output.ndim == 2 else 1
    return Described(
        classes=tuple(range(width)) if width > 1 else None,
        probabilities=width > 1,
        outputs=width,
        float_dtype=float_dtype,
    )


class TorchRunner:
    """Calls a network under inference mode on the device it was put on."""

    def __init__(
        self,
        network: Callable[[torch.Tensor], Any],
        dtype: torch.dtype,
        device: str,
        regression: bool,
    ) -> None:
        self._network = network
        self._dtype = dtype
        self._device = device
        self._regression = regression

    @classmethod
    def for_output(
        cls, network: Callable[[torch.Tensor], Any], dtype: torch.dtype, device: str, output: Any
    ) -> TorchRunner:
        return cls(network, dtype, device, isinstance(output, RegressionOutput))

    @property
    def device(self) -> str:
        return self._device

    def run(self, batch: Batch) -> RawOutput:
        if isinstance(batch, dict):
            raise FormatError("a PyTorch network takes a tensor, not named columns")
        tensor = torch.from_numpy(batch)
        if tensor.is_floating_point():
            tensor = tensor.to(self._dtype)
        with torch.inference_mode():
            output = _first(self._network(tensor.to(self._device))).cpu().numpy()
        return RawOutput(values=output) if self._regression else RawOutput(scores=output)
