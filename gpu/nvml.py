"""What NVML says about this machine's NVIDIA GPUs, through nvidia-ml-py (``pynvml``).

NVML is the driver's own monitoring library: it answers without a CUDA context, so reading it
costs no GPU memory and works while another process owns the device. A machine without a GPU,
without the driver or without nvidia-ml-py is an ordinary answer here (``NoGpuError`` with the
reason), never a crash: the same code runs on CPU nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

__all__ = [
    "GpuInventory",
    "GpuReading",
    "NoGpuError",
    "NvmlSession",
    "load_library",
    "nvml_session",
    "read_inventory",
]

_MIG_ENABLED = 1
_T = TypeVar("_T")


class NoGpuError(RuntimeError):
    """No NVIDIA GPU can be read here; the message says why (no driver, no library, none)."""


@dataclass(frozen=True)
class GpuReading:
    """One device at one instant; None where the device does not report a field (MIG slices
    and some boards report no power or utilization)."""

    index: int
    name: str
    uuid: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization_ratio: float | None
    power_watts: float | None
    temperature_celsius: float | None
    mig_mode: str | None


@dataclass(frozen=True)
class GpuInventory:
    gpus: tuple[GpuReading, ...]
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "gpus": [asdict(gpu) for gpu in self.gpus],
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "reason": self.reason,
        }


def load_library() -> Any:
    """The pynvml module; tests replace this function to hand in the NVML test double."""
    try:
        import pynvml  # type: ignore[import-untyped]
    except ImportError:
        raise NoGpuError("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from None
    return pynvml


def _text(value: str | bytes) -> str:
    """Older drivers' bindings return bytes, newer ones str."""
    return value.decode() if isinstance(value, bytes) else value


class NvmlSession:
    """An initialised NVML library; opened once and read many times by the metrics sampler."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    def _optional(self, read: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return read(*args)
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == self._nvml.NVML_ERROR_NOT_SUPPORTED:
                return None
            raise

    def driver_versions(self) -> tuple[str, str]:
        nvml = self._nvml
        cuda = int(nvml.nvmlSystemGetCudaDriverVersion())
        return _text(nvml.nvmlSystemGetDriverVersion()), f"{cuda // 1000}.{cuda % 1000 // 10}"

    def readings(self) -> list[GpuReading]:
        nvml = self._nvml
        readings = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilization = self._optional(nvml.nvmlDeviceGetUtilizationRates, handle)
            power_mw = self._optional(nvml.nvmlDeviceGetPowerUsage, handle)
            temperature = self._optional(
                nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU
            )
            mig = self._optional(nvml.nvmlDeviceGetMigMode, handle)
            readings.append(
                GpuReading(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    memory_total_bytes=int(memory.total),
                    memory_used_bytes=int(memory.used),
                    utilization_ratio=None if utilization is None else utilization.gpu / 100,
                    power_watts=None if power_mw is None else power_mw / 1000,
                    temperature_celsius=None if temperature is None else float(temperature),
                    mig_mode=None if mig is None else _mig_mode(mig[0]),
                )
            )
        return readings


def _mig_mode(current: int) -> str:
    return "enabled" if current == _MIG_ENABLED else "disabled"


@contextmanager
def nvml_session() -> Iterator[NvmlSession]:
    """NVML initialised for the block; NoGpuError when there is no driver or no GPU."""
    nvml = load_library()
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise NoGpuError(f"NVML cannot start: {exc}") from None
    try:
        if int(nvml.nvmlDeviceGetCount()) == 0:
            raise NoGpuError("the NVIDIA driver is loaded but reports no GPU")
        yield NvmlSession(nvml)
    finally:
        nvml.nvmlShutdown()


def read_inventory() -> GpuInventory:
    try:
        with nvml_session() as session:
            driver, cuda = session.driver_versions()
            return GpuInventory(tuple(session.readings()), driver, cuda)
    except NoGpuError as exc:
        return GpuInventory((), reason=str(exc))
