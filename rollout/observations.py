"""What the decision engine reads: cumulative Prometheus counters for both versions at one instant.

Why cumulative counters and not rates: every test in the engine needs counts (how many labeled
predictions, how many requests), and a rate over a window has thrown them away.

Why the increase over a step is chained tick by tick (`CounterWindow`) instead of subtracting the
snapshot taken when the step started: a restarted replica resets its counters to zero, and with
only two points the increase across a reset is unknowable; it even shrinks again once the counter
climbs back past the old baseline. Following every tick, a decrease is seen as a reset when it
happens and a step's totals never go down.

Why a reset counts nothing for its tick, where PromQL's ``increase()`` would count the new value:
the counters the engine gets are sums over a version's replicas (feedback for a version can reach
any of them), and when one replica restarts the sum drops by that replica's count only, so its new
value is mostly old traffic. Counting it would add evidence that was never gathered; counting
nothing loses at most one tick of traffic. For the same reason the whole arm (every counter and
bucket of the version) is re-based together: correct and incorrect feedback dropping by different
amounts must not bias the accuracy of that tick.

Why a missing value is ``None`` (NaN, infinities and negative numbers from a query are turned into
``None``) and never zero: zero would read as "no traffic" and a failed query must not look like
evidence.

Latency histograms follow Prometheus: cumulative counts keyed by the bucket's upper bound ``le``,
``+Inf`` included, in seconds. Quantiles and exceedances interpolate linearly inside a bucket like
``histogram_quantile()`` does; the engine only ever compares canary and stable through the same
interpolation, so its error inside a bucket is shared by both sides instead of read as a
difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "ArmCounters",
    "CamelModel",
    "CounterWindow",
    "Exceedance",
    "MetricValues",
    "Observation",
    "exceedance",
    "histogram_quantile",
]

_SCALARS = (
    "predictions",
    "feedback_correct",
    "feedback_incorrect",
    "feedback_measured",
    "absolute_error_sum",
    "squared_error_sum",
    "squared_error_squares_sum",
    "requests",
    "server_errors",
    "client_errors",
    "shadow_agreed",
    "shadow_disagreed",
    "shadow_measured",
    "shadow_difference_sum",
    "shadow_difference_squares_sum",
    "shadow_lost",
)


class CamelModel(BaseModel):
    """Base of every rollout type: camelCase on the wire (YAML, CRD, status), snake_case in Python.

    It lives here because this is the module every other rollout module already imports.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )


def _usable(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


class ArmCounters(CamelModel):
    """Counters of one version (stable or canary), cumulative since its processes started.

    The same type holds a step's increases (`CounterWindow.total`): those are counters too.
    """

    predictions: float | None = None
    feedback_correct: float | None = None  # a classifier's labels, judged right
    feedback_incorrect: float | None = None
    feedback_measured: float | None = None  # a regressor's labels, and the sums of its errors
    absolute_error_sum: float | None = None
    squared_error_sum: float | None = None
    squared_error_squares_sum: float | None = None
    requests: float | None = None
    server_errors: float | None = None  # 5xx
    client_errors: float | None = None  # 4xx: bad input is the client's fault, never the canary's
    latency_buckets: dict[float, float] | None = None  # le (seconds, +Inf included) -> count
    # A shadow step's comparison of the canary's answers with stable's on the same requests,
    # counted by the stable servers that sent the copies (`mlcanary.rollout.shadow`): a
    # classifier's rows that agreed or not, and which class flipped to which ("stable→canary");
    # a regressor's rows compared, the sum of their absolute differences and of its squares;
    # and the copies never compared (dropped, timed out, failed).
    shadow_agreed: float | None = None
    shadow_disagreed: float | None = None
    shadow_flips: dict[str, float] | None = None
    shadow_measured: float | None = None
    shadow_difference_sum: float | None = None
    shadow_difference_squares_sum: float | None = None
    shadow_lost: float | None = None

    @field_validator(*_SCALARS)
    @classmethod
    def _unusable_is_missing(cls, value: float | None) -> float | None:
        return _usable(value)

    def unlabeled(self) -> float | None:
        """Predictions without a label (yet): labels still to come, or never sent."""
        if self.predictions is None:
            return None
        labels = sum(
            value or 0.0
            for value in (self.feedback_correct, self.feedback_incorrect, self.feedback_measured)
        )
        return max(self.predictions - labels, 0.0)

    @field_validator("latency_buckets")
    @classmethod
    def _histogram_or_missing(cls, value: dict[float, float] | None) -> dict[float, float] | None:
        """A histogram with an unusable bucket or no +Inf bucket has no total: treat as missing."""
        if value is None or math.inf not in value:
            return None
        if any(_usable(count) is None for count in value.values()):
            return None
        return dict(sorted(value.items()))

    @field_validator("shadow_flips")
    @classmethod
    def _flips_or_missing(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None or any(_usable(count) is None for count in value.values()):
            return None
        return dict(sorted(value.items()))


class MetricValues(CamelModel):
    """One metric check's query, run for each version at one tick; None where it returned
    nothing, NaN or an error."""

    canary: float | None = None
    stable: float | None = None

    @field_validator("canary", "stable")
    @classmethod
    def _nan_is_missing(cls, value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None


class Observation(CamelModel):
    """Both versions' counters as read at `timestamp`; any part may be missing (a failed query).

    ``unavailable`` says why nothing could be read at all (the metrics source did not answer,
    the canary is not served), so that a hold can name its cause rather than only its effect."""

    timestamp: AwareDatetime
    stable: ArmCounters = ArmCounters()
    canary: ArmCounters = ArmCounters()
    unavailable: str | None = None
    # The values of the user's own metric checks (`spec.MetricCheck`), by check name.
    metrics: dict[str, MetricValues] = Field(default_factory=dict)


# (field, key): one Prometheus series; the key is a histogram's le or a flip's "a→b", and 0.0
# for scalars.
_Series = tuple[str, float | str]
_KEYED = ("latency_buckets", "shadow_flips")  # the fields that hold one series per key


def _series(arm: ArmCounters) -> dict[_Series, float]:
    values: dict[_Series, float] = {
        (name, 0.0): value for name in _SCALARS if (value := getattr(arm, name)) is not None
    }
    for name in _KEYED:
        keyed: dict[float, float] | dict[str, float] = getattr(arm, name) or {}
        for key, count in keyed.items():
            values[name, key] = count
    return values


def _arm(series: Mapping[_Series, float]) -> ArmCounters:
    fields: dict[str, object] = {
        name: value for (name, _), value in series.items() if name in _SCALARS
    }
    for field in _KEYED:
        keyed = {key: value for (name, key), value in series.items() if name == field}
        if keyed:
            fields[field] = keyed
    return ArmCounters.model_validate(fields)


class CounterWindow(CamelModel):
    """An arm's counter increases since its step started, and the raw values seen last tick."""

    last: ArmCounters = ArmCounters()
    total: ArmCounters = ArmCounters()

    def update(self, current: ArmCounters, *, count: bool = True) -> CounterWindow:
        """Fold in one tick. With ``count=False`` (a paused rollout) the values become the new
        baseline but the traffic in between is not added to the totals; a reset does the same.

        A value missing this tick keeps its last one, so the next tick counts the whole gap. A
        series seen for the first time starts at a total of zero: that tick is its baseline,
        since what it counted before may predate the step. A flip cell is the exception: the
        servers create one at its first flip, after exporting the disagreement counter at zero,
        so a cell new to an arm whose disagreements were already seen was born inside the window
        and counts from zero (`_born_in_window`).
        """
        now, before, totals = _series(current), _series(self.last), _series(self.total)
        reset = any(value < before[key] for key, value in now.items() if key in before)
        for key, value in now.items():
            if not count or reset:
                increase = 0.0
            elif key in before:
                increase = value - before[key]
            else:
                increase = value if _born_in_window(key, before) else 0.0
            totals[key] = totals.get(key, 0.0) + increase
        return CounterWindow(last=_arm(before | now), total=_arm(totals))


def _born_in_window(key: _Series, before: Mapping[_Series, float]) -> bool:
    return key[0] == "shadow_flips" and ("shadow_disagreed", 0.0) in before


def _cumulative(buckets: Mapping[float, float]) -> tuple[list[float], list[float]]:
    """Sorted bounds and counts made non-decreasing, as ``histogram_quantile()`` does: buckets
    scraped at slightly different moments, or reset one by one, can be out of order by a few."""
    bounds = sorted(buckets)
    counts: list[float] = []
    for le in bounds:
        counts.append(max(buckets[le], counts[-1] if counts else 0.0))
    return bounds, counts


def _first_at_least(values: list[float], target: float) -> int:
    """Index of the first of the non-decreasing `values` that reaches `target`."""
    return next(i for i, value in enumerate(values) if value >= target)


def histogram_quantile(quantile: float, buckets: Mapping[float, float]) -> float:
    """The `quantile` of a cumulative histogram, interpolated like Prometheus.

    Returns ``math.inf`` where Prometheus would return the largest finite bound: the quantile lies
    in the +Inf bucket, so any finite answer would understate it, and NaN for an empty histogram.
    """
    bounds, counts = _cumulative(buckets)
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = quantile * total
    i = _first_at_least(counts, rank)
    if math.isinf(bounds[i]):
        return math.inf
    lower_bound = bounds[i - 1] if i > 0 else 0.0
    lower_count = counts[i - 1] if i > 0 else 0.0
    width = counts[i] - lower_count
    if width <= 0:
        return bounds[i]
    return lower_bound + (bounds[i] - lower_bound) * (rank - lower_count) / width


class Exceedance(NamedTuple):
    """How many observations exceeded a threshold: an estimate that can be trusted not to be too
    high (`low`) and one that can be trusted not to be too low (`high`). They differ only when the
    threshold lies beyond the last finite bucket, where the histogram cannot say."""

    low: float
    high: float


def exceedance(buckets: Mapping[float, float], threshold: float) -> Exceedance:
    """Count of observations above `threshold` (seconds), interpolated inside its bucket."""
    bounds, counts = _cumulative(buckets)
    total = counts[-1]
    i = _first_at_least(bounds, threshold)  # +Inf always qualifies
    lower_count = counts[i - 1] if i > 0 else 0.0
    if math.isinf(bounds[i]):
        return Exceedance(0.0, total - lower_count)
    lower_bound = bounds[i - 1] if i > 0 else 0.0
    fraction = (
        (threshold - lower_bound) / (bounds[i] - lower_bound) if bounds[i] > lower_bound else 1.0
    )
    above = total - (lower_count + (counts[i] - lower_count) * max(fraction, 0.0))
    return Exceedance(above, above)
