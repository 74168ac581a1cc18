"""How much longer an inconclusive check needs, at the rate its step has seen so far.

Why by scaling the counts rather than by a formula per test: every check is a pure function of
its counts, so the question "how many more samples until it concludes, if what it sees now
persists" has one answer for all of them: grow both versions' counts by a factor k, keeping
their proportions (the same accuracy, the same latency histogram's shape, the same 5xx share),
and find the smallest k at which the check passes or fails. At a steady rate the step then needs
k - 1 times the time it has run. The forecast is an extrapolation of what was seen, not a
promise: a canary whose true difference lies near the check's bound keeps moving it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mlcanary.rollout.checks import Assessment, ErrorBudget
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.status import Verdict

__all__ = ["MAX_GROWTH", "Forecast", "growth_needed", "sample_count", "scaled"]

MAX_GROWTH = 4096.0  # beyond this the check will not conclude at any useful rate
_BISECTIONS = 12


def _labels(arm: ArmCounters) -> float | None:
    if arm.feedback_correct is None or arm.feedback_incorrect is None:
        return None
    return arm.feedback_correct + arm.feedback_incorrect


def _measured(arm: ArmCounters) -> float | None:
    return arm.feedback_measured


def _timed(arm: ArmCounters) -> float | None:
    return (arm.latency_buckets or {}).get(math.inf)


def _served(arm: ArmCounters) -> float | None:
    if arm.requests is None or arm.client_errors is None:
        return None
    return arm.requests - arm.client_errors


def _agreements(arm: ArmCounters) -> float | None:
    if arm.shadow_agreed is None or arm.shadow_disagreed is None:
        return None
    return arm.shadow_agreed + arm.shadow_disagreed


def _differences(arm: ArmCounters) -> float | None:
    return arm.shadow_measured


# What one sample is for each check: the count its test grows with.
_SAMPLES: dict[str, tuple[str, Callable[[ArmCounters], float | None]]] = {
    "accuracy": ("labels", _labels),
    "error": ("labels", _measured),
    "latency": ("requests", _timed),
    "latency-max": ("requests", _timed),
    "error-rate": ("requests", _served),
    "agreement": ("comparisons", _agreements),
    "difference": ("comparisons", _differences),
}


@dataclass(frozen=True)
class Forecast:
    """More canary samples (`unit`: labels or requests) and seconds, at the step's rate."""

    samples: float
    unit: str
    seconds: float


def sample_count(metric: str, arm: ArmCounters) -> tuple[str, float | None]:
    unit, count = _SAMPLES[metric]
    return unit, count(arm)


def scaled(arm: ArmCounters, factor: float) -> ArmCounters:
    """The counts `factor` times as large, in the same proportions."""
    fields = {
        name: value * factor
        for name, value in arm.model_dump(exclude={"latency_buckets", "shadow_flips"}).items()
        if value is not None
    }
    if arm.latency_buckets is not None:
        fields["latency_buckets"] = {le: n * factor for le, n in arm.latency_buckets.items()}
    return ArmCounters.model_validate(fields)


def growth_needed(
    assess: Assessment,
    canary: ArmCounters,
    stable: ArmCounters,
    budget: ErrorBudget,
    *,
    stable_grows: bool,
) -> float | None:
    """The smallest factor by which the counts must grow for `assess` to conclude; None when
    not even `MAX_GROWTH` would do. Stable's counts grow too while it serves traffic; at a step
    where it serves nothing they are a fixed reference."""

    def concludes(factor: float) -> bool:
        grown_stable = scaled(stable, factor) if stable_grows else stable
        return (
            assess(scaled(canary, factor), grown_stable, budget).verdict is not Verdict.INCONCLUSIVE
        )

    high = 2.0
    while not concludes(high):
        high *= 2
        if high > MAX_GROWTH:
            return None
    low = high / 2 if high > 2 else 1.0
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if concludes(middle):
            high = middle
        else:
            low = middle
    return high
