"""When a load level has settled: its last few windows agree on throughput and latency.

A level judged before it settles reads the warm-up (connections opening, caches filling) or a
queue that is still growing; a fixed hold long enough for every target would waste minutes on
the fast ones. So a level is held until its last ``windows`` windows each lie within
``tolerance`` of their mean, for throughput and for p95, or until the runner's maximum hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import fmean

from mlcanary.loadtest.window import Window

__all__ = ["StabilityRule", "is_stable", "latency_rising"]


@dataclass(frozen=True)
class StabilityRule:
    windows: int = 3
    tolerance: float = 0.10
    # Latencies are counted in whole milliseconds: a p95 of 3 ms against 4 ms is resolution,
    # not instability.
    latency_floor_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.windows < 2:
            raise ValueError(f"windows must be at least 2, got {self.windows}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be within (0, 1), got {self.tolerance}")


def _agree(values: list[float], tolerance: float, floor: float) -> bool:
    mean = fmean(values)
    return all(abs(value - mean) <= max(tolerance * mean, floor) for value in values)


def is_stable(windows: Sequence[Window], rule: StabilityRule) -> bool:
    if len(windows) < rule.windows:
        return False
    tail = windows[-rule.windows :]
    return _agree([w.throughput_rps for w in tail], rule.tolerance, 0.0) and _agree(
        [w.percentile_ms(0.95) for w in tail], rule.tolerance, rule.latency_floor_ms
    )


def latency_rising(windows: Sequence[Window], rule: StabilityRule) -> bool:
    """Median and p95 both climbing through the last windows beyond the tolerance: a queue still
    building, the sign of a rate above capacity even while each window's p95 is within the
    objective. Both, because a queue delays every request while noise moves the tail alone."""
    tail = windows[-rule.windows :]
    return all(_climbing([w.percentile_ms(q) for w in tail], rule) for q in (0.50, 0.95))


def _climbing(values: list[float], rule: StabilityRule) -> bool:
    monotonic = all(later >= earlier for earlier, later in pairwise(values))
    return monotonic and values[-1] - values[0] > max(
        rule.tolerance * values[0], rule.latency_floor_ms
    )
