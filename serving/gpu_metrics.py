"""GPU gauges on the service's /metrics: utilization, memory used and total, power, per device.

Under BentoML the /metrics page is assembled from the workers' multiprocess files, so a
collector that reads NVML at scrape time would never run; each worker instead samples NVML on a
timer into ordinary gauges. ``mostrecent`` makes the page show the newest sample of a device
whichever worker took it, rather than one series per worker process. Alert rules read
``mlcanary_gpu_memory_used_bytes / mlcanary_gpu_memory_total_bytes``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from mlcanary.gpu.nvml import GpuReading, NoGpuError, NvmlSession, nvml_session

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["GpuGauges", "GpuSampler", "start_gpu_sampler"]

log = logging.getLogger(__name__)


class GpuGauges:
    def __init__(
        self, model: str, version: str, *, registry: CollectorRegistry | None = None
    ) -> None:
        import prometheus_client as prom

        registry = registry if registry is not None else prom.REGISTRY
        self._labels = (model, version)
        names = ("model", "version", "gpu")

        def gauge(name: str, doc: str) -> prom.Gauge:
            return prom.Gauge(name, doc, names, multiprocess_mode="mostrecent", registry=registry)

        self._utilization = gauge(
            "mlcanary_gpu_utilization_ratio",
            "Fraction of the last sample period in which a kernel ran on the GPU (NVML).",
        )
        self._used = gauge("mlcanary_gpu_memory_used_bytes", "GPU memory in use, all processes.")
        self._total = gauge("mlcanary_gpu_memory_total_bytes", "GPU memory installed.")
        self._power = gauge("mlcanary_gpu_power_watts", "GPU board power draw.")

    def update(self, readings: Iterable[GpuReading]) -> None:
        for gpu in readings:
            labels = (*self._labels, str(gpu.index))
            self._used.labels(*labels).set(gpu.memory_used_bytes)
            self._total.labels(*labels).set(gpu.memory_total_bytes)
            if gpu.utilization_ratio is not None:
                self._utilization.labels(*labels).set(gpu.utilization_ratio)
            if gpu.power_watts is not None:
                self._power.labels(*labels).set(gpu.power_watts)


class GpuSampler:
    """Reads NVML into the gauges now and then every ``interval_s`` on a daemon thread."""

    def __init__(
        self,
        session: NvmlSession,
        gauges: GpuGauges,
        interval_s: float,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self._session = session
        self._gauges = gauges
        self._interval_s = interval_s
        self._on_close = on_close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    def sample(self) -> None:
        self._gauges.update(self._session.readings())

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.sample()
            except Exception:
                # A GPU that falls off the bus must not take the serving worker with it.
                log.exception("GPU sample failed; the gauges keep their last values")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._on_close()


def start_gpu_sampler(
    model: str, version: str, interval_s: float, *, registry: CollectorRegistry | None = None
) -> GpuSampler | None:
    """None on a machine without a GPU: no gauges are created, so no empty series appear."""
    stack = ExitStack()
    try:
        session = stack.enter_context(nvml_session())
    except NoGpuError as exc:
        log.info("no GPU gauges: %s", exc)
        return None
    sampler = GpuSampler(
        session, GpuGauges(model, version, registry=registry), interval_s, stack.close
    )
    sampler.start()
    return sampler
