"""Where a torch model runs: the GPU with the most free memory when one is usable, else the CPU.

The choice is made at load time on the serving machine, never at build time, so the same
artifact and image serve on CPU nodes and on GPU nodes. Free memory comes from
``torch.cuda.mem_get_info`` (what the CUDA allocator can still get, other processes included),
which is what decides whether the model and its batches fit.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["CudaDevices", "DeviceError", "select_torch_device"]


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
        return _freest_gpu(devices) if available else "cpu"
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
