"""Reads a service's /metrics into per-version totals, for reports and Prometheus-less setups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from mlcanary.serving.metrics import LOST_OUTCOMES

__all__ = ["VersionTotals", "parse_metrics"]


# Samples summed into one field of the totals, by name (feedback goes by outcome instead).
_SUMMED = {
    "mlcanary_predictions_total": "predictions",
    "mlcanary_feedback_absolute_error_sum": "absolute_error_sum",
    "mlcanary_feedback_squared_error_total": "squared_error_sum",
    "mlcanary_feedback_squared_error_squares_total": "squared_error_squares_sum",
}


_OUTCOMES = {
    "correct": "feedback_correct",
    "incorrect": "feedback_incorrect",
    "measured": "feedback_measured",
}

# A shadow step's comparisons, counted by the baseline's servers for the version compared.
_SHADOW_SUMMED = {
    "mlcanary_shadow_absolute_difference_count": "shadow_measured",
    "mlcanary_shadow_absolute_difference_sum": "shadow_difference_sum",
    "mlcanary_shadow_squared_difference_total": "shadow_difference_squares_sum",
}
_AGREEMENT = {"agree": "shadow_agreed", "disagree": "shadow_disagreed"}


@dataclass
class VersionTotals:
    predictions: float = 0.0
    feedback_correct: float = 0.0
    feedback_incorrect: float = 0.0
    feedback_measured: float = 0.0
    absolute_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    squared_error_squares_sum: float = 0.0
    shadow_agreed: float = 0.0
    shadow_disagreed: float = 0.0
    shadow_measured: float = 0.0
    shadow_difference_sum: float = 0.0
    shadow_difference_squares_sum: float = 0.0
    shadow_lost: float = 0.0
    responses_by_code: dict[str, float] = field(default_factory=dict)
    latency_buckets: dict[float, float] = field(default_factory=dict)
    shadow_flips: dict[tuple[str, str], float] = field(default_factory=dict)

    def merged(self, other: VersionTotals) -> VersionTotals:
        """Totals of two processes' samples for the same version, as ``sum by (version)``."""

        def add(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
            return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}

        scalars = {
            name: getattr(self, name) + getattr(other, name)
            for name in (
                *_SUMMED.values(),
                *_OUTCOMES.values(),
                *_SHADOW_SUMMED.values(),
                *_AGREEMENT.values(),
                "shadow_lost",
            )
        }
        return VersionTotals(
            **scalars,
            responses_by_code=add(self.responses_by_code, other.responses_by_code),
            latency_buckets=add(self.latency_buckets, other.latency_buckets),
            shadow_flips=add(self.shadow_flips, other.shadow_flips),
        )

    def _add(self, name: str, value: float) -> None:
        setattr(self, name, getattr(self, name) + value)

    def _shadow(self, name: str, labels: dict[str, str], value: float) -> None:
        if name in _SHADOW_SUMMED:
            self._add(_SHADOW_SUMMED[name], value)
        elif name == "mlcanary_shadow_comparisons_total" and labels.get("outcome") in _AGREEMENT:
            self._add(_AGREEMENT[labels["outcome"]], value)
        elif name == "mlcanary_shadow_copies_total" and labels.get("outcome") in LOST_OUTCOMES:
            self._add("shadow_lost", value)
        elif name == "mlcanary_shadow_flips_total":
            cell = (labels.get("baseline_class", ""), labels.get("class", ""))
            self.shadow_flips[cell] = self.shadow_flips.get(cell, 0.0) + value


def parse_metrics(
    text: str, endpoint: str = "/predict", baseline: str | None = None
) -> dict[str, VersionTotals]:
    """Totals per version; latency and response codes are those of ``endpoint``, shadow
    comparisons those against ``baseline`` (any, when None)."""
    totals: dict[str, VersionTotals] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("version")
            if version is None:
                continue
            entry = totals.setdefault(version, VersionTotals())
            if sample.name.startswith("mlcanary_shadow_"):
                if baseline is None or sample.labels.get("baseline") == baseline:
                    entry._shadow(sample.name, sample.labels, sample.value)
            elif sample.name in _SUMMED:
                name = _SUMMED[sample.name]
                setattr(entry, name, getattr(entry, name) + sample.value)
            elif sample.name == "mlcanary_feedback_total":
                name = _OUTCOMES.get(sample.labels.get("outcome", ""), "")
                if name:
                    setattr(entry, name, getattr(entry, name) + sample.value)
            elif sample.labels.get("endpoint") != endpoint:
                continue
            elif sample.name == "mlcanary_http_requests_total":
                code = sample.labels["code"]
                entry.responses_by_code[code] = entry.responses_by_code.get(code, 0) + sample.value
            elif sample.name == "mlcanary_http_request_duration_seconds_bucket":
                bound = float(sample.labels["le"])
                entry.latency_buckets[bound] = entry.latency_buckets.get(bound, 0) + sample.value
    return totals
