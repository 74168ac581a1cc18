"""GPU utilization of this machine's NVIDIA devices, read through `mlcanary.gpu.nvml`.

NVML's own utilization is the share of its last sample period (about a second) in which a kernel
ran; sampled at every window and averaged over devices, in percent. Without a driver or a device,
every sample is None and `reason` says why once.
"""

from __future__ import annotations

import contextlib

from mlcanary.gpu import nvml

__all__ = ["NvmlGpu"]


class NvmlGpu:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._session: nvml.NvmlSession | None = None
        self.reason = "no GPU"
        try:
            self._session = self._stack.enter_context(nvml.nvml_session())
        except nvml.NoGpuError as error:
            self.reason = f"no GPU ({error})"

    @property
    def available(self) -> bool:
        return self._session is not None

    def sample(self) -> float | None:
        if self._session is None:
            return None
        try:
            readings = self._session.readings()
        except nvml.load_library().NVMLError:
            return None  # a device that failed this once; the next window asks again
        values = [r.utilization_ratio * 100 for r in readings if r.utilization_ratio is not None]
        return sum(values) / len(values) if values else None

    def close(self) -> None:
        self._session = None
        self._stack.close()
