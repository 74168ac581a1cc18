"""What one load level measured, and the interface of whatever runs a level.

One interface, so that the search logic (`search.py`) is tested with a scripted runner
(`level_runner_scripted.py`) and runs for real with Locust (`level_runner_locust.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["GeneratorLoad", "LevelResult", "LevelRunner"]


@dataclass(frozen=True)
class GeneratorLoad:
    """CPU of the load generator's own processes, in percent of one core.

    A Locust process is one gevent loop on one core: near 100% of a core it schedules requests
    late, so both its busiest process and its total against the cores it may use are watched.
    """

    busiest_process_pct: float
    total_pct: float
    processes: int
    cores: int

    def saturated(self, threshold: float = 0.85) -> bool:
        return (
            self.busiest_process_pct > threshold * 100
            or self.total_pct > threshold * 100 * self.cores
        )


@dataclass(frozen=True)
class LevelResult:
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_ratio: float
    requests: int
    users: int
    held_s: float
    stable: bool
    latency_rising: bool
    generator: GeneratorLoad
    server_cpu_pct: float | None = None  # percent of one core, summed over the server's processes
    gpu_utilization_pct: float | None = None
    machine_cpu_pct: float | None = None  # the whole machine, in percent of all its cores
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class LevelRunner(Protocol):
    def run(self, offered_rps: float) -> LevelResult:
        """Offer `offered_rps` requests per second until the level is stable (or the runner's
        maximum hold), and report what was achieved."""
        ...
