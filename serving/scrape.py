"""Reads a service's /metrics into per-version totals, for reports and Prometheus-less setups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["VersionTotals", "parse_metrics"]


@dataclass
class VersionTotals:
    predictions: float = 0.0
    feedback_correct: float = 0.0
    feedback_incorrect: float = 0.0
    responses_by_code: dict[str, float] = field(default_factory=dict)
    latency_buckets: dict[float, float] = field(default_factory=dict)

    def merged(self, other: VersionTotals) -> VersionTotals:
        """Totals of two processes' samples for the same version, as ``sum by (version)``."""

        def add(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
            return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}

        return VersionTotals(
            predictions=self.predictions + other.predictions,
            feedback_correct=self.feedback_correct + other.feedback_correct,
            feedback_incorrect=self.feedback_incorrect + other.feedback_incorrect,
            responses_by_code=add(self.responses_by_code, other.responses_by_code),
            latency_buckets=add(self.latency_buckets, other.latency_buckets),
        )


def parse_metrics(text: str, endpoint: str = "/predict") -> dict[str, VersionTotals]:
    """Totals per version; latency and response codes are those of ``endpoint``."""
    totals: dict[str, VersionTotals] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("version")
            if version is None:
                continue
            entry = totals.setdefault(version, VersionTotals())
            if sample.name == "mlcanary_predictions_total":
                entry.predictions += sample.value
            elif sample.name == "mlcanary_feedback_total":
                if sample.labels.get("outcome") == "correct":
                    entry.feedback_correct += sample.value
                else:
                    entry.feedback_incorrect += sample.value
            elif sample.labels.get("endpoint") != endpoint:
                continue
            elif sample.name == "mlcanary_http_requests_total":
                code = sample.labels["code"]
                entry.responses_by_code[code] = entry.responses_by_code.get(code, 0) + sample.value
            elif sample.name == "mlcanary_http_request_duration_seconds_bucket":
                bound = float(sample.labels["le"])
                entry.latency_buckets[bound] = entry.latency_buckets.get(bound, 0) + sample.value
    return totals
