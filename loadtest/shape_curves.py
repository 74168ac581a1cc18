"""The curves of the load shapes: users as a pure function of time, step, ramp and spike.

Kept apart from the ``LoadTestShape`` classes (`shapes`) because importing Locust patches the
whole process for gevent: these can be checked, and reused, without that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ShapeParameters", "ramp_users", "spike_users", "step_users"]


@dataclass(frozen=True)
class ShapeParameters:
    peak_users: int
    duration_s: float
    steps: int = 5

    @classmethod
    def from_options(cls, options: Any) -> ShapeParameters:
        return cls(options.shape_peak_users, options.shape_duration_s, options.shape_steps)


def step_users(elapsed_s: float, p: ShapeParameters) -> int:
    """Equal steps up to the peak: where latency jumps between two steps is the knee."""
    step = min(p.steps, int(elapsed_s / (p.duration_s / p.steps)) + 1)
    return math.ceil(p.peak_users * step / p.steps)


def ramp_users(elapsed_s: float, p: ShapeParameters) -> int:
    """A linear climb to the peak over the whole run, for a smooth latency-against-load curve."""
    return max(1, math.ceil(p.peak_users * elapsed_s / p.duration_s))


def spike_users(elapsed_s: float, p: ShapeParameters) -> int:
    """A fifth of the peak, the whole peak for the middle fifth of the run, then back: how the
    service absorbs a burst and how fast it recovers."""
    in_spike = 0.4 * p.duration_s <= elapsed_s < 0.6 * p.duration_s
    return p.peak_users if in_spike else max(1, math.ceil(p.peak_users / 5))
