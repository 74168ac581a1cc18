from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlcanary.loadtest.budgets import budget_breaches
from mlcanary.loadtest.option_checks import option_problems
from mlcanary.loadtest.shape_curves import ShapeParameters, ramp_users, spike_users, step_users

P = ShapeParameters(peak_users=50, duration_s=100, steps=5)


@pytest.mark.parametrize(
    ("users_at", "curve"),
    [
        (step_users, {0: 10, 19.9: 10, 20: 20, 59: 30, 80: 50, 99.9: 50}),
        (ramp_users, {0: 1, 10: 5, 50: 25, 99: 50}),
        (spike_users, {0: 10, 39.9: 10, 40: 50, 59.9: 50, 60: 10, 99: 10}),
    ],
)
def test_users_over_time(users_at, curve) -> None:
    assert {t: users_at(t, P) for t in curve} == curve


def options(**change: float) -> SimpleNamespace:
    values = {
        "feedback_ratio": 1.0, "feedback_delay_s": 0.0, "rate_per_user": 0.0,
        "p95_budget_ms": 0.0, "max_failure_ratio": 1.0, "max_pending_feedback": 100,
        "window_s": 2.0, "shape_peak_users": 50, "shape_duration_s": 60.0, "shape_steps": 5,
    }  # fmt: skip
    return SimpleNamespace(**(values | change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feedback_ratio": 1.5}, "--feedback-ratio must be within 0..1"),
        ({"feedback_delay_s": -1}, "--feedback-delay-s must be >= 0"),
        ({"max_pending_feedback": -1}, "--max-pending-feedback must be >= 0"),
        ({"shape_steps": 0}, "--shape-steps must be > 0"),
        ({"max_failure_ratio": 2}, "--max-failure-ratio must be within 0..1"),
    ],
)
def test_option_problems_name_the_option(change, message) -> None:
    assert option_problems(options()) == []
    assert any(message in p for p in option_problems(options(**change)))


@pytest.mark.parametrize(
    ("p95", "failures", "p95_budget", "max_failures", "broken"),
    [
        (40, 0.0, 50, 0.01, []),
        (60, 0.0, 50, 0.01, ["p95 60 ms exceeds the budget of 50 ms"]),
        (60, 0.0, 0, 0.01, []),  # no latency budget
        (40, 0.02, 50, 0.01, ["failure ratio 0.0200 exceeds the budget of 0.0100"]),
        (60, 0.5, 50, 0.01, ["p95 60 ms", "failure ratio 0.5000"]),
    ],
)
def test_budget_breaches(p95, failures, p95_budget, max_failures, broken) -> None:
    breaches = budget_breaches(p95, failures, p95_budget, max_failures)
    assert len(breaches) == len(broken)
    assert all(b.startswith(prefix) for b, prefix in zip(breaches, broken, strict=True))
