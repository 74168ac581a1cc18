"""Counters read straight from the services' /metrics, for a machine with no Prometheus server.

Every service is scraped and the samples summed by version label, as Prometheus would: feedback
for one version may be counted by another version's server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import httpx

from mlcanary.metrics.kind import Sources
from mlcanary.rollout.metrics.base import MetricsUnavailableError, Target, response_counts
from mlcanary.rollout.observations import ArmCounters, Observation
from mlcanary.rollout.shadow import flip
from mlcanary.rollout.spec import MetricsSpec
from mlcanary.serving.scrape import VersionTotals, parse_metrics

__all__ = ["PROVIDER", "ScrapeProvider"]


def _arm(totals: VersionTotals | None) -> ArmCounters:
    if totals is None:
        return ArmCounters()
    codes = totals.responses_by_code
    counts: dict[str, float] = response_counts(codes) if codes else {}
    return ArmCounters(
        predictions=totals.predictions,
        feedback_correct=totals.feedback_correct,
        feedback_incorrect=totals.feedback_incorrect,
        feedback_measured=totals.feedback_measured,
        absolute_error_sum=totals.absolute_error_sum,
        squared_error_sum=totals.squared_error_sum,
        squared_error_squares_sum=totals.squared_error_squares_sum,
        latency_buckets=dict(totals.latency_buckets) or None,
        shadow_agreed=totals.shadow_agreed,
        shadow_disagreed=totals.shadow_disagreed,
        shadow_flips={flip(*cell): n for cell, n in totals.shadow_flips.items()},
        shadow_measured=totals.shadow_measured,
        shadow_difference_sum=totals.shadow_difference_sum,
        shadow_difference_squares_sum=totals.shadow_difference_squares_sum,
        shadow_lost=totals.shadow_lost,
        requests=counts.get("requests"),
        server_errors=counts.get("server_errors"),
        client_errors=counts.get("client_errors"),
    )


class ScrapeProvider:
    def __init__(
        self,
        urls: Callable[[], Sequence[str]],
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`urls` is asked on every read: the set of services changes during a rollout."""
        self._urls = urls
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _fetch(self, url: str) -> str | None:
        try:
            response = self._client.get(f"{url.rstrip('/')}/metrics")
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    def observe(self, target: Target, now: datetime) -> Observation:
        urls = list(self._urls())
        texts = [self._fetch(url) for url in urls]
        if all(text is None for text in texts):
            raise MetricsUnavailableError(f"none of {', '.join(urls) or 'no services'} answered")
        if any(text is None for text in texts):
            # A partial sum would read as a counter reset; no data is the honest answer.
            return Observation(timestamp=now)
        merged: dict[str, VersionTotals] = {}
        for text in texts:
            assert text is not None
            counted = parse_metrics(text, target.endpoint, baseline=target.stable_version)
            for version, totals in counted.items():
                merged[version] = merged[version].merged(totals) if version in merged else totals
        return Observation(
            timestamp=now,
            stable=_arm(merged.get(target.stable_version)),
            canary=_arm(merged.get(target.canary_version)),
        )


class _Kind:
    def build(self, spec: MetricsSpec, sources: Sources) -> ScrapeProvider:
        return ScrapeProvider(sources.service_urls)


PROVIDER = _Kind()
