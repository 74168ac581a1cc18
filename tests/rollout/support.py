"""Shared by the engine and checks tests: a spec, counters of one version, observations."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import yaml

from mlcanary.rollout.engine import decide
from mlcanary.rollout.observations import ArmCounters, Observation
from mlcanary.rollout.spec import ModelRollout
from mlcanary.rollout.status import RolloutStatus

START = datetime(2025, 1, 1, tzinfo=UTC)
BOUNDS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, math.inf)

SPEC = """
apiVersion: mlcanary.dev/v1alpha1
kind: ModelRollout
metadata: {name: digits}
spec:
  model: digits
  stable: {version: v1}
  canary: {version: v2}
  metrics: {provider: prometheus, address: http://127.0.0.1:9090}
  steps: [10, 100]
  analysis:
    interval: 30s
    minSamples: 200
    maxDuration: 15m
    accuracy: {maxDrop: 0.02}
    latency: {quantile: 0.95, maxRatio: 1.25}
    errorRate: {max: 0.01}
"""


def spec_with(**analysis: object) -> ModelRollout:
    document = yaml.safe_load(SPEC)
    document["spec"]["analysis"].update(analysis)
    return ModelRollout.model_validate(document)


def histogram(count: float, median: float = 0.04) -> dict[float, float]:
    """Expected cumulative counts of `count` log-normal latencies (sigma 0.5)."""
    latency = NormalDist(math.log(median), 0.5)
    return {le: count * (1.0 if math.isinf(le) else latency.cdf(math.log(le))) for le in BOUNDS}


def arm(
    labeled: float = 0,
    accuracy: float = 0.9,
    requests: float | None = None,
    median: float = 0.04,
    server_errors: float = 0,
    client_errors: float = 0,
) -> ArmCounters:
    """Cumulative counters of one version; requests default to twice the labeled predictions."""
    requests = 2 * labeled if requests is None else requests
    return ArmCounters(
        predictions=requests,
        feedback_correct=round(labeled * accuracy),
        feedback_incorrect=labeled - round(labeled * accuracy),
        requests=requests,
        server_errors=server_errors,
        client_errors=client_errors,
        latency_buckets=histogram(requests - client_errors, median),
    )


def observe(at: timedelta, canary: ArmCounters, stable: ArmCounters) -> Observation:
    return Observation(timestamp=START + at, canary=canary, stable=stable)


def started(spec: ModelRollout) -> RolloutStatus:
    decision = decide(spec, RolloutStatus(), observe(timedelta(), arm(), arm()), START)
    return decision.status


def tick(
    spec: ModelRollout,
    status: RolloutStatus,
    canary: ArmCounters,
    stable: ArmCounters,
    at: timedelta = timedelta(minutes=1),
):
    return decide(spec, status, observe(at, canary, stable), START + at)


GOOD_STABLE = arm(45_000)
