"""Utilization read from the target's own Prometheus ``/metrics``, for a target on another machine.

CPU from the standard ``process_cpu_seconds_total`` counter (differenced over time, summed over the
series of a multi-process server); GPU from the ``mlcanary_gpu_utilization_ratio`` gauge (averaged
over devices). A target without the metric, or unreachable, yields None.
"""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["MetricsEndpointCpu", "MetricsEndpointGpu", "read_samples"]


def read_samples(url: str, name: str, client: httpx.Client) -> list[float]:
    try:
        response = client.get(f"{url.rstrip('/')}/metrics", timeout=2.0)
        if response.status_code != 200:
            return []
        return [
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name
        ]
    except (httpx.HTTPError, ValueError):  # unreachable, or not Prometheus text
        return []


class MetricsEndpointCpu:
    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client
        self._last: tuple[float, float] | None = None

    def sample(self) -> float | None:
        values = read_samples(self.url, "process_cpu_seconds_total", self.client)
        now = time.monotonic()
        if not values:
            return None
        last, self._last = self._last, (now, sum(values))
        if last is None or now <= last[0]:
            return None
        return max(0.0, 100 * (sum(values) - last[1]) / (now - last[0]))


class MetricsEndpointGpu:
    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client

    def sample(self) -> float | None:
        values = read_samples(self.url, "mlcanary_gpu_utilization_ratio", self.client)
        return 100 * sum(values) / len(values) if values else None
