"""Where a torch model runs: the GPU with the most free memory when one is usable, else the CPU.

The choice is made at load time on the serving machine, never at build time, so the same
artifact and image serve on CPU nodes and on GPU nodes. Free memory comes from
``torch.cuda.mem_get_info`` (what the CUDA allocator can still get, other processes included),
which is what decides whether the model and its batches fit.
"""

from __future__ import annotations

import logging
from typing import Protocol

import torch

from mlcanary.gpu.nvml import read_inventory

__all__ = ["CudaDevices", "DeviceError", "select_torch_device", "why_not_cuda"]

_log = logging.getLogger(__name__)


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


class CudaDevices(Protocol):
    """The part of ``torch.cuda`` that placement reads; ``gpu/cuda_fake.py`` is its double."""

    def is_available(self) -> bool: ...

    def device_count(self) -> int: ...

    def mem_get_info(self, device: int) -> tuple[int, int]: ...


def select_torch_device(preference: str = "auto", cuda: CudaDevices | None = None) -> str:
    """Resolve "auto", "cpu", "cuda" or "cuda:N" to a concrete device name."""
    if preference == "cpu":
        return "cpu"
    devices: CudaDevices = torch.cuda if cuda is None else cuda
    available = devices.is_available()
    if preference == "auto":
        if available:
            return _freest_gpu(devices)
        # An image built for GPUs that lands on a node without one (or without the NVIDIA
        # runtime) serves anyway; the log says why it is not on a GPU.
        _log.warning("serving on the CPU: %s", why_not_cuda())
        return "cpu"
    if preference == "cuda" or preference.startswith("cuda:"):
        if not available:
            raise DeviceError(f"device {preference!r} requested but no CUDA GPU is usable here")
        if preference == "cuda":
            return _freest_gpu(devices)
        index = preference.partition(":")[2]
        if not index.isdigit():
            raise DeviceError(f"device {preference!r}: N in cuda:N must be a GPU index")
        if int(index) >= devices.device_count():
            raise DeviceError(
                f"device {preference!r} requested but only "
                f"{devices.device_count()} GPU(s) are visible"
            )
        return preference
    raise DeviceError(f"unknown device {preference!r}; use auto, cpu, cuda or cuda:N")


def _freest_gpu(devices: CudaDevices) -> str:
    free = [devices.mem_get_info(i)[0] for i in range(devices.device_count())]
    return f"cuda:{max(range(len(free)), key=free.__getitem__)}"


def why_not_cuda() -> str:
    """Why CUDA is not usable here, in the terms that tell what to change: the torch build,
    else what the NVIDIA driver (NVML) says, else the two CUDA versions."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build"
    built = f"torch {torch.__version__} is built for CUDA {torch.version.cuda}"
    inventory = read_inventory()
    if not inventory.gpus:
        return f"{built}, but no NVIDIA GPU is visible: {inventory.reason}"
    return (
        f"{built}, but CUDA cannot use the {len(inventory.gpus)} GPU(s) NVML sees (driver "
        f"{inventory.driver_version}, which supports CUDA {inventory.cuda_driver_version})"
    )
