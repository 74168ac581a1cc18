"""Test double of the pynvml module, for machines without an NVIDIA GPU or driver.

It answers the NVML calls that ``mlcanary.gpu.nvml`` makes from given device data, reports
"not supported" where a real board would (power, temperature or MIG set to None), and can fail
``nvmlInit`` the way pynvml does on a machine without the driver. It records whether the
library is initialised, so tests can check that every session shuts NVML down again.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

__all__ = ["FakeDevice", "FakeNvml", "FakeNvmlError"]


class FakeNvmlError(Exception):
    def __init__(self, value: int, message: str) -> None:
        super().__init__(message)
        self.value = value


@dataclass
class FakeDevice:
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total: int = 80 * 2**30
    memory_used: int = 0
    utilization_percent: int | None = 0
    power_milliwatts: int | None = 70_000
    temperature_celsius: int | None = 35
    mig_current: int | None = 0


class FakeNvml:
    NVMLError = FakeNvmlError
    NVML_TEMPERATURE_GPU = 0
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_LIBRARY_NOT_FOUND = 12

    def __init__(
        self,
        devices: list[FakeDevice] | None = None,
        *,
        init_error: str | None = None,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
    ) -> None:
        self.devices = devices if devices is not None else []
        self.initialised = False
        self._init_error = init_error
        self._driver = driver_version
        self._cuda = cuda_driver_version

    def nvmlInit(self) -> None:
        if self._init_error is not None:
            raise FakeNvmlError(self.NVML_ERROR_LIBRARY_NOT_FOUND, self._init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def _check(self) -> None:
        if not self.initialised:
            raise FakeNvmlError(1, "Uninitialized")

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        self._check()
        return self.devices[index]

    def nvmlDeviceGetName(self, handle: FakeDevice) -> bytes:
        return handle.name.encode()

    def nvmlDeviceGetUUID(self, handle: FakeDevice) -> str:
        return f"GPU-fake-{self.devices.index(handle)}"

    def nvmlDeviceGetMemoryInfo(self, handle: FakeDevice) -> SimpleNamespace:
        free = handle.memory_total - handle.memory_used
        return SimpleNamespace(total=handle.memory_total, used=handle.memory_used, free=free)

    def _supported(self, value: int | None) -> int:
        if value is None:
            raise FakeNvmlError(self.NVML_ERROR_NOT_SUPPORTED, "Not Supported")
        return value

    def nvmlDeviceGetUtilizationRates(self, handle: FakeDevice) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._supported(handle.utilization_percent), memory=0)

    def nvmlDeviceGetPowerUsage(self, handle: FakeDevice) -> int:
        return self._supported(handle.power_milliwatts)

    def nvmlDeviceGetTemperature(self, handle: FakeDevice, sensor: int) -> int:
        return self._supported(handle.temperature_celsius)

    def nvmlDeviceGetMigMode(self, handle: FakeDevice) -> list[int]:
        return [self._supported(handle.mig_current), self._supported(handle.mig_current)]

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self._driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check()
        return self._cuda
