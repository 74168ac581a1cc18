"""Where a torch model runs: the GPU with the most free memory when one is usable, else the CPU.

The choice is made at load time on the serving machine, never at build time, so the same
artifact and image serve on CPU nodes and on GPU nodes.
"""

from __future__ import annotations

import torch

__all__ = ["DeviceError", "select_torch_device"]


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def select_torch_device(preference: str = "auto") -> str:
    """Resolve "auto", "cpu", "cuda" or "cuda:N" to a concrete device name."""
    if preference == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    if preference == "auto":
        return _freest_gpu() if available else "cpu"
    if preference.startswith("cuda"):
        if not available:
            raise DeviceError(f"device {preference!r} requested but no CUDA GPU is usable here")
        if preference == "cuda":
            return _freest_gpu()
        index = int(preference.partition(":")[2])
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {preference!r} requested but only "
                f"{torch.cuda.device_count()} GPU(s) are visible"
            )
        return preference
    raise DeviceError(f"unknown device {preference!r}; use auto, cpu, cuda or cuda:N")


def _freest_gpu() -> str:
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return f"cuda:{max(range(len(free)), key=free.__getitem__)}"
