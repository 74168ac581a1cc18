"""The statistical checks, each on counts alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcanary.rollout.checks import (
    ErrorBudget,
    assess_accuracy,
    assess_error,
    assess_error_rate,
    assess_latency,
    assess_latency_max,
    error_budget,
)
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.spec import AccuracyCheck, ErrorCheck, ErrorRateCheck, LatencyCheck
from mlcanary.rollout.status import Verdict
from tests.rollout.support import arm, histogram, spec_with

BUDGET = ErrorBudget(alpha=0.01 / 6, beta=0.01, min_samples=200)


@pytest.mark.parametrize(
    ("analysis", "steps", "alpha"),
    [
        ({}, 2, 0.01 / 6),
        ({"latency": {"maxMs": 300}}, 2, 0.01 / 8),
        ({"latency": None, "errorRate": None}, 3, 0.01 / 3),
    ],
)
def test_alpha_is_shared_by_every_rollback_test(analysis, steps, alpha):
    budget = error_budget(spec_with(**analysis).spec.analysis, steps)
    assert budget.alpha == pytest.approx(alpha)
    assert budget.beta == 0.01


@pytest.mark.parametrize(
    ("canary", "stable", "max_drop", "verdict"),
    [
        (ArmCounters(), arm(5000), 0.02, Verdict.INCONCLUSIVE),
        (arm(199), arm(5000), 0.02, Verdict.INCONCLUSIVE),
        (arm(5000), arm(150), 0.02, Verdict.INCONCLUSIVE),
        (arm(5000, accuracy=0.90), arm(45_000, accuracy=0.90), 0.02, Verdict.PASS),
        (arm(5000, accuracy=0.87), arm(45_000, accuracy=0.90), 0.02, Verdict.FAIL),
        (arm(1000, accuracy=0.89), arm(9000, accuracy=0.90), 0.02, Verdict.INCONCLUSIVE),
        (arm(1000, accuracy=0.89), arm(9000, accuracy=0.90), 0.10, Verdict.PASS),
    ],
)
def test_assess_accuracy(canary, stable, max_drop, verdict):
    reason = assess_accuracy(AccuracyCheck(max_drop=max_drop), canary, stable, BUDGET)
    assert reason.verdict is verdict
    if stable.feedback_correct and canary.feedback_correct:
        assert reason.threshold == pytest.approx(reason.stable - max_drop)


@pytest.mark.parametrize(
    ("canary_median", "canary_requests", "stable_buckets", "verdict", "words"),
    [
        (0.04, 5000, histogram(50_000), Verdict.PASS, "under the limit"),
        (0.044, 5000, histogram(50_000), Verdict.PASS, "under the limit"),  # 10% slower is fine
        (0.05, 5000, histogram(50_000), Verdict.INCONCLUSIVE, "not conclusive yet"),  # at 1.25
        (0.06, 5000, histogram(50_000), Verdict.FAIL, "significantly over the limit"),
        (0.04, 150, histogram(50_000), Verdict.INCONCLUSIVE, "200 of each needed"),
        (0.04, 5000, {0.01: 0, math.inf: 50_000}, Verdict.INCONCLUSIVE, "largest finite bucket"),
        (0.04, 5000, None, Verdict.INCONCLUSIVE, "no latency histogram"),
    ],
)
def test_assess_latency(canary_median, canary_requests, stable_buckets, verdict, words):
    canary = ArmCounters(latency_buckets=histogram(canary_requests, canary_median))
    stable = ArmCounters(latency_buckets=stable_buckets)
    reason = assess_latency(LatencyCheck(), canary, stable, BUDGET)
    assert reason.verdict is verdict
    assert words in reason.message


@pytest.mark.parametrize(
    ("median", "max_ms", "verdict"),
    [
        (0.04, 300, Verdict.PASS),
        (0.04, 60, Verdict.FAIL),
        (0.04, 91, Verdict.INCONCLUSIVE),
        (2.0, 5000, Verdict.INCONCLUSIVE),  # the limit lies beyond the last finite bucket
    ],
)
def test_assess_latency_max(median, max_ms, verdict):
    canary = ArmCounters(latency_buckets=histogram(5000, median))
    reason = assess_latency_max(LatencyCheck(max_ms=max_ms), canary, ArmCounters(), BUDGET)
    assert reason.verdict is verdict
    assert reason.threshold == pytest.approx(max_ms / 1000)


def test_assess_latency_max_needs_a_bound():
    with pytest.raises(ValueError, match="maxMs"):
        assess_latency_max(LatencyCheck(), arm(5000), arm(5000), BUDGET)


@pytest.mark.parametrize(
    ("requests", "server_errors", "client_errors", "verdict"),
    [
        (10_000, 5, 0, Verdict.PASS),
        (10_000, 300, 0, Verdict.FAIL),
        (10_000, 100, 0, Verdict.INCONCLUSIVE),
        (10_000, 50, 9000, Verdict.FAIL),  # 5% of the 1000 requests that were valid
        (100, 0, 0, Verdict.INCONCLUSIVE),
        (None, 0, 0, Verdict.INCONCLUSIVE),
    ],
)
def test_assess_error_rate(requests, server_errors, client_errors, verdict):
    canary = ArmCounters(
        requests=requests, server_errors=server_errors, client_errors=client_errors
    )
    reason = assess_error_rate(
        ErrorRateCheck(max=0.01), canary, arm(50_000, server_errors=50), BUDGET
    )
    assert reason.verdict is verdict
    assert reason.stable == pytest.approx(0.0005)


def _errors(n: int, scale: float, seed: int) -> ArmCounters:
    """Error sums of n labeled predictions whose errors are normal with this scale."""
    errors = np.random.default_rng(seed).normal(0.0, scale, n)
    absolute, squared = np.abs(errors), errors**2
    return ArmCounters(
        feedback_measured=float(n),
        absolute_error_sum=float(absolute.sum()),
        squared_error_sum=float(squared.sum()),
        squared_error_squares_sum=float((squared**2).sum()),
    )


@pytest.mark.parametrize(
    ("canary", "metric", "verdict"),
    [
        (_errors(20_000, 10.0, 1), "mae", Verdict.PASS),
        (_errors(20_000, 12.0, 2), "mae", Verdict.FAIL),
        (_errors(20_000, 10.0, 3), "rmse", Verdict.PASS),
        (_errors(20_000, 12.0, 4), "rmse", Verdict.FAIL),
        (_errors(150, 12.0, 5), "mae", Verdict.INCONCLUSIVE),  # fewer than minSamples
        (ArmCounters(), "mae", Verdict.INCONCLUSIVE),  # no sums: a classifier's counters
    ],
)
def test_assess_error(canary: ArmCounters, metric: str, verdict: Verdict) -> None:
    stable = _errors(40_000, 10.0, 99)
    check = ErrorCheck.model_validate({"metric": metric, "maxIncrease": 0.05})
    reason = assess_error(check, canary, stable, BUDGET)
    assert reason.verdict is verdict, reason.message
    if canary.feedback_measured:
        expected = 10.0 * (math.sqrt(2 / math.pi) if metric == "mae" else 1.0)
        assert reason.stable == pytest.approx(expected, rel=0.02)
        assert reason.stable is not None
        assert reason.threshold == pytest.approx(reason.stable * 1.05)
