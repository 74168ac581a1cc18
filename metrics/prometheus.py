"""Counters from a Prometheus server through its HTTP API (PromQL instant queries).

Queries sum each version's series over every replica that exported them: feedback for a version
can be counted by any replica of the model, and a version can run as several replicas. Label
values are checked against a strict pattern by `Target` and escaped here as well, so nothing a
spec says can change the shape of a query.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import httpx

from mlcanary.metrics.kind import Sources
from mlcanary.rollout.metrics.base import MetricsUnavailableError, Target, response_counts
from mlcanary.rollout.observations import ArmCounters, Observation
from mlcanary.rollout.spec import MetricsSpec

__all__ = ["PROVIDER", "PrometheusProvider", "promql_string"]


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal holding exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# A regressor's error sums (absent for a classifier, whose queries then return nothing).
_ERROR_SUMS = {
    "absolute_error_sum": "mlcanary_feedback_absolute_error_sum",
    "squared_error_sum": "mlcanary_feedback_squared_error_total",
    "squared_error_squares_sum": "mlcanary_feedback_squared_error_squares_total",
}


class _QueryFailedError(RuntimeError):
    pass


class PrometheusProvider:
    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(base_url=address, timeout=timeout_s, transport=transport)
        self._reachable = True

    def close(self) -> None:
        self._client.close()

    def _query(self, promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
        try:
            response = self._client.get(
                "/api/v1/query", params={"query": promql, "time": f"{at.timestamp():.3f}"}
            )
        except httpx.TransportError as exc:
            self._reachable = False
            raise _QueryFailedError(str(exc)) from exc
        self._reachable = True
        if response.status_code != 200:
            raise _QueryFailedError(f"HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise _QueryFailedError(str(body.get("error", body))[:200])
        return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]

    def _arm(self, target: Target, version: str, at: datetime) -> ArmCounters:
        selector = f"model={promql_string(target.model)},version={promql_string(version)}"
        http_selector = f"{selector},endpoint={promql_string(target.endpoint)}"
        fields: dict[str, object] = {}

        def predictions() -> None:
            rows = self._query(f"sum(mlcanary_predictions_total{{{selector}}})", at)
            if rows:
                fields["predictions"] = rows[0][1]

        def feedback() -> None:
            rows = self._query(f"sum by (outcome) (mlcanary_feedback_total{{{selector}}})", at)
            if rows:
                by_outcome = {labels.get("outcome"): value for labels, value in rows}
                fields["feedback_correct"] = by_outcome.get("correct", 0.0)
                fields["feedback_incorrect"] = by_outcome.get("incorrect", 0.0)
                fields["feedback_measured"] = by_outcome.get("measured", 0.0)

        def errors() -> None:
            for field, metric in _ERROR_SUMS.items():
                rows = self._query(f"sum({metric}{{{selector}}})", at)
                if rows:
                    fields[field] = rows[0][1]

        def responses() -> None:
            rows = self._query(
                f"sum by (code) (mlcanary_http_requests_total{{{http_selector}}})", at
            )
            if rows:
                fields.update(response_counts({m.get("code", ""): value for m, value in rows}))

        def latency() -> None:
            rows = self._query(
                f"sum by (le) (mlcanary_http_request_duration_seconds_bucket{{{http_selector}}})",
                at,
            )
            if rows:
                fields["latency_buckets"] = {float(m["le"]): value for m, value in rows}

        for read in (predictions, feedback, errors, responses, latency):
            with contextlib.suppress(_QueryFailedError):
                read()
        return ArmCounters.model_validate(fields)

    def observe(self, target: Target, now: datetime) -> Observation:
        stable = self._arm(target, target.stable_version, now)
        canary = self._arm(target, target.canary_version, now)
        if not self._reachable:
            raise MetricsUnavailableError(
                "Prometheus at " + str(self._client.base_url) + " is unreachable"
            )
        return Observation(timestamp=now, stable=stable, canary=canary)


class _Kind:
    def build(self, spec: MetricsSpec, sources: Sources) -> PrometheusProvider:
        if spec.address is None:  # the spec refuses it; kept for the type checker
            raise ValueError("the prometheus provider needs an address")
        return PrometheusProvider(spec.address)


PROVIDER = _Kind()
