"""Counters from a Prometheus server through its HTTP API (PromQL instant queries).

Queries sum each version's series over every replica that exported them: feedback for a version
can be counted by any replica of the model, and a version can run as several replicas. Label
values are checked against a strict pattern by `Target` and escaped here as well, so nothing a
spec says can change the shape of a query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime

import httpx

from mlcanary.metrics.kind import Sources
from mlcanary.rollout.metrics.base import MetricsUnavailableError, Target, response_counts
from mlcanary.rollout.observations import ArmCounters, MetricValues, Observation
from mlcanary.rollout.shadow import flip
from mlcanary.rollout.spec import MetricsSpec
from mlcanary.rollout.templates import render_query
from mlcanary.serving.metrics import LOST_OUTCOMES

__all__ = ["PROVIDER", "PrometheusProvider", "promql_string"]


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal holding exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# A shadow step's series and outcomes, each into the field it sums into; flips go by their cell.
_FLIPS = "mlcanary_shadow_flips_total"
_SHADOW_COUNTS = {
    ("mlcanary_shadow_comparisons_total", "agree"): "shadow_agreed",
    ("mlcanary_shadow_comparisons_total", "disagree"): "shadow_disagreed",
    ("mlcanary_shadow_absolute_difference_count", ""): "shadow_measured",
    ("mlcanary_shadow_absolute_difference_sum", ""): "shadow_difference_sum",
    ("mlcanary_shadow_squared_difference_total", ""): "shadow_difference_squares_sum",
    **{("mlcanary_shadow_copies_total", outcome): "shadow_lost" for outcome in LOST_OUTCOMES},
}
_SHADOW_NAMES = "|".join(sorted({name for name, _ in _SHADOW_COUNTS} | {_FLIPS}))

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

    def _shadow(self, target: Target, at: datetime) -> dict[str, object]:
        """The canary's comparisons with stable in a shadow step, counted by stable's servers
        for this version pair, in one query; zero where nothing was compared yet (no series),
        missing when the query failed."""
        selector = (
            f'__name__=~"{_SHADOW_NAMES}",model={promql_string(target.model)},'
            f"version={promql_string(target.canary_version)},"
            f"baseline={promql_string(target.stable_version)}"
        )
        try:
            rows = self._query(
                f"sum by (__name__, outcome, baseline_class, class) ({{{selector}}})", at
            )
        except _QueryFailedError:
            return {}
        fields = dict.fromkeys(_SHADOW_COUNTS.values(), 0.0)
        flips: dict[str, float] = {}
        for labels, value in rows:
            name, outcome = labels.get("__name__", ""), labels.get("outcome", "")
            if name == _FLIPS:
                flips[flip(labels.get("baseline_class", ""), labels.get("class", ""))] = value
            elif (field := _SHADOW_COUNTS.get((name, outcome))) is not None:
                fields[field] += value
        return {**fields, "shadow_flips": flips}

    def _arm(
        self, target: Target, version: str, at: datetime, extra: Mapping[str, object] = {}
    ) -> ArmCounters:
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
        return ArmCounters.model_validate({**fields, **extra})

    def _value(self, template: str, target: Target, version: str, at: datetime) -> float | None:
        """A metric check's value for one version: the query's single series, else None (no
        series, several, NaN or an error: a check must sum its query to one series)."""
        values = {
            "model": target.model,
            "version": version,
            "namespace": target.namespace,
            "interval": target.interval,
        }
        try:
            rows = self._query(render_query(template, values), at)
        except _QueryFailedError:
            return None
        return rows[0][1] if len(rows) == 1 else None

    def observe(self, target: Target, now: datetime) -> Observation:
        stable = self._arm(target, target.stable_version, now)
        canary = self._arm(target, target.canary_version, now, self._shadow(target, now))
        metrics = {
            name: MetricValues(
                canary=self._value(template, target, target.canary_version, now),
                stable=self._value(template, target, target.stable_version, now),
            )
            for name, template in target.queries
        }
        if not self._reachable:
            raise MetricsUnavailableError(
                "Prometheus at " + str(self._client.base_url) + " is unreachable"
            )
        return Observation(timestamp=now, stable=stable, canary=canary, metrics=metrics)


class _Kind:
    def build(self, spec: MetricsSpec, sources: Sources) -> PrometheusProvider:
        if spec.address is None:  # the spec refuses it; kept for the type checker
            raise ValueError("the prometheus provider needs an address")
        return PrometheusProvider(spec.address)


PROVIDER = _Kind()
