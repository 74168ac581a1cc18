"""Utilization of the target while it is under load: one interface, one module per source.

`process_cpu` (psutil on the server's process tree, when it runs on this machine),
`metrics_endpoint` (the target's own Prometheus ``/metrics``, when it runs elsewhere) and `nvml`
(the GPUs of this machine). Every probe returns None, never raises, when its source is missing:
a capacity measured without a GPU reading is still a capacity.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["UsageProbe"]


class UsageProbe(Protocol):
    def sample(self) -> float | None:
        """Utilization in percent (of one core for CPU, of one device for a GPU) averaged since
        the previous call; the first call only starts the clock and may return None."""
        ...
