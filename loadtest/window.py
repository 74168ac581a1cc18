"""Load statistics over one window of time, and the arithmetic to combine windows.

Windows carry Locust's whole response-time histogram (milliseconds, rounded the way Locust rounds
them) rather than a few percentiles: percentiles of a union of windows, or of the same window seen
by several worker processes, can only be computed from the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Window", "in_parallel", "in_sequence"]


@dataclass(frozen=True)
class Window:
    duration_s: float
    requests: int
    failures: int
    response_times: Mapping[int, int] = field(default_factory=dict)

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def percentile_ms(self, quantile: float) -> float:
        """The smallest recorded time with at least `quantile` of the requests at or below it."""
        total = sum(self.response_times.values())
        if total == 0:
            return 0.0
        needed = quantile * total
        seen = 0
        for value in sorted(self.response_times):
            seen += self.response_times[value]
            if seen >= needed:
                return float(value)
        return float(max(self.response_times))

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "requests": self.requests,
            "failures": self.failures,
            "response_times": {str(k): v for k, v in sorted(self.response_times.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Window:
        return cls(
            duration_s=float(data["duration_s"]),
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            response_times={int(k): int(v) for k, v in data["response_times"].items()},
        )


def _histogram(windows: Iterable[Window]) -> dict[int, int]:
    total: Counter[int] = Counter()
    for window in windows:
        total.update(window.response_times)
    return dict(total)


def in_parallel(windows: list[Window]) -> Window:
    """The same stretch of time as seen by several load-generating processes."""
    return Window(
        duration_s=sum(w.duration_s for w in windows) / len(windows),
        requests=sum(w.requests for w in windows),
        failures=sum(w.failures for w in windows),
        response_times=_histogram(windows),
    )


def in_sequence(windows: list[Window]) -> Window:
    """Consecutive stretches of time, as one longer window."""
    return Window(
        duration_s=sum(w.duration_s for w in windows),
        requests=sum(w.requests for w in windows),
        failures=sum(w.failures for w in windows),
        response_times=_histogram(windows),
    )
