"""GPU utilization of this machine's NVIDIA devices, through NVML (nvidia-ml-py).

NVML's own utilization is the share of its last sample period (about a second) in which a kernel
ran; sampled at every window and averaged over devices. Without a driver or a device, every
sample is None and `available` says so once.
"""

from __future__ import annotations

import contextlib

import pynvml  # type: ignore[import-untyped]

__all__ = ["NvmlGpu"]


class NvmlGpu:
    def __init__(self) -> None:
        self.available = False
        self.reason = "no GPU"
        try:
            pynvml.nvmlInit()
            self._handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except pynvml.NVMLError as error:
            self.reason = f"no GPU ({error})" if str(error) else "no GPU"
            self._handles = []
        self.available = bool(self._handles)

    def sample(self) -> float | None:
        if not self.available:
            return None
        values = []
        for handle in self._handles:
            with contextlib.suppress(pynvml.NVMLError):
                values.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        return sum(values) / len(values) if values else None

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()
            self.available = False
