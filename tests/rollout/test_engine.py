"""The state machine: decisions from (rollout, status, observation, now), from tables."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from mlcanary.rollout.commands import CommandRequest
from mlcanary.rollout.engine import apply_command, decide
from mlcanary.rollout.observations import ArmCounters, Observation
from mlcanary.rollout.status import HISTORY_LIMIT, Action, Phase, RolloutStatus, Verdict, Weights
from tests.rollout.support import (
    GOOD_STABLE,
    START,
    arm,
    observe,
    spec_with,
    started,
    tick,
)


@pytest.mark.parametrize(
    ("canary", "action", "verdicts"),
    [
        (
            arm(100),
            Action.HOLD,
            {"accuracy": Verdict.INCONCLUSIVE, "error-rate": Verdict.INCONCLUSIVE},
        ),
        (arm(5000), Action.ADVANCE, {"accuracy": Verdict.PASS, "latency": Verdict.PASS}),
        (arm(5000, accuracy=0.95), Action.ADVANCE, {"accuracy": Verdict.PASS}),
        (arm(2000, accuracy=0.8), Action.ROLLBACK, {"accuracy": Verdict.FAIL}),
        (arm(400, accuracy=0.89), Action.HOLD, {"accuracy": Verdict.INCONCLUSIVE}),
        (arm(5000, median=0.08), Action.ROLLBACK, {"latency": Verdict.FAIL}),
        (arm(5000, server_errors=500), Action.ROLLBACK, {"error-rate": Verdict.FAIL}),
        (arm(5000, client_errors=3000), Action.ADVANCE, {"error-rate": Verdict.PASS}),
        (arm(5000, server_errors=100), Action.HOLD, {"error-rate": Verdict.INCONCLUSIVE}),
    ],
    ids=[
        "too-few-samples",
        "equal",
        "better",
        "accuracy-regression",
        "small-drop-undecided",
        "twice-as-slow",
        "5xx-regression",
        "4xx-are-not-the-canary's-fault",
        "5xx-at-the-limit",
    ],
)
def test_first_step_decisions(canary, action, verdicts):
    spec = spec_with()
    decision = tick(spec, started(spec), canary, GOOD_STABLE)
    assert decision.action is action
    by_metric = {reason.metric: reason.verdict for reason in decision.reasons}
    assert {metric: by_metric[metric] for metric in verdicts} == verdicts
    expected_weights = {
        Action.HOLD: Weights(stable=90, canary=10),
        Action.ADVANCE: Weights(stable=0, canary=100),
        Action.ROLLBACK: Weights(stable=100, canary=0),
    }[action]
    assert decision.weights == expected_weights == decision.status.weights


def test_start_sends_the_first_step_weight_and_records_the_versions():
    spec = spec_with()
    decision = decide(spec, RolloutStatus(), observe(timedelta(), arm(), arm()), START)
    status = decision.status
    assert decision.action is Action.HOLD
    assert decision.weights == Weights(stable=90, canary=10)
    assert (status.phase, status.step_index) == (Phase.PROGRESSING, 0)
    assert (status.stable_version, status.canary_version) == ("v1", "v2")
    assert status.spec_hash == spec.spec_hash()
    assert status.conditions[0].status == "Unknown"


def test_advance_then_promote_compares_the_last_step_with_stable_reference():
    spec = spec_with()
    advanced = tick(spec, started(spec), arm(5000), GOOD_STABLE).status
    assert advanced.step_index == 1
    assert advanced.reference is not None
    assert advanced.reference.feedback_correct == GOOD_STABLE.feedback_correct
    assert advanced.counters.canary.total.feedback_correct == 0
    # Stable serves nothing now: its queries may even fail without blocking the decision.
    promoted = tick(spec, advanced, arm(10_000), ArmCounters(), timedelta(minutes=2))
    assert promoted.action is Action.PROMOTE
    assert promoted.status.phase is Phase.SUCCEEDED
    assert promoted.weights == Weights(stable=0, canary=100)
    accuracy = next(r for r in promoted.reasons if r.metric == "accuracy")
    assert accuracy.stable == pytest.approx(0.9)
    assert promoted.status.conditions[0].status == "True"


def test_a_regression_at_the_last_step_rolls_back():
    spec = spec_with()
    advanced = tick(spec, started(spec), arm(5000), GOOD_STABLE).status
    # 5000 labels were counted at the first step; the 3000 since are 80% correct.
    canary = arm(5000 + 3000, accuracy=(5000 * 0.9 + 3000 * 0.8) / 8000)
    decision = tick(spec, advanced, canary, GOOD_STABLE, timedelta(minutes=2))
    assert decision.action is Action.ROLLBACK
    assert decision.status.phase is Phase.ROLLED_BACK
    assert decision.status.conditions[0].status == "False"


@pytest.mark.parametrize(
    ("elapsed", "action"),
    [(timedelta(minutes=14, seconds=59), Action.HOLD), (timedelta(minutes=15), Action.ROLLBACK)],
)
def test_inconclusive_at_max_duration_rolls_back(elapsed, action):
    spec = spec_with()
    decision = tick(spec, started(spec), arm(400, accuracy=0.89), GOOD_STABLE, elapsed)
    assert decision.action is action
    if action is Action.ROLLBACK:
        assert decision.reasons[-1].metric == "analysis"
        assert "maxDuration 15m" in decision.message


@pytest.mark.parametrize("missing", [None, math.nan, -1.0])
def test_a_failed_query_holds_even_when_the_counts_so_far_would_pass(missing):
    spec = spec_with()
    status = tick(spec, started(spec), arm(5000, requests=100), GOOD_STABLE).status
    assert status.phase is Phase.PROGRESSING
    canary = ArmCounters.model_validate(
        {**arm(5000, requests=10_000).model_dump(), "feedbackCorrect": missing}
    )
    decision = tick(spec, status, canary, GOOD_STABLE, timedelta(minutes=2))
    assert decision.action is Action.HOLD
    accuracy = next(r for r in decision.reasons if r.metric == "accuracy")
    assert accuracy.verdict is Verdict.INCONCLUSIVE
    assert "query failed this tick (canary.feedbackCorrect)" in accuracy.message
    assert decision.status.counters.failed_queries == 1
    assert (
        decision.status.counters.canary.total.feedback_correct
        == status.counters.canary.total.feedback_correct
    )


def test_a_total_outage_never_promotes_and_rolls_back_at_the_deadline():
    spec = spec_with()
    status = started(spec)
    for minute in range(1, 16):
        at = START + timedelta(minutes=minute)
        decision = decide(spec, status, Observation(timestamp=at, unavailable="no answer"), at)
        status = decision.status
        assert decision.action is (Action.HOLD if minute < 15 else Action.ROLLBACK)
    assert status.counters.failed_queries == 15
    # The cause, and since when, in the final message, where a person reads it.
    outage = "metrics unavailable since 2025-01-01 00:01:00Z (for 14m): no answer"
    assert status.message == (
        "rolled back at step 1 of 2 (10% canary): still inconclusive after 15m (maxDuration 15m):"
        f" {outage}; accuracy, latency, error-rate"
    )


def test_a_hold_says_since_when_the_metrics_are_unavailable_until_they_return():
    spec = spec_with()
    status = started(spec)
    messages, since = [], []
    ticks = [
        (1, "Prometheus at http://127.0.0.1:9090 is unreachable"),
        (3, "still down"),
        (4, None),
    ]
    for minute, unavailable in ticks:
        at = START + timedelta(minutes=minute)
        if unavailable is None:
            observation = observe(timedelta(minutes=minute), arm(100), GOOD_STABLE)
        else:
            observation = Observation(timestamp=at, unavailable=unavailable)
        status = decide(spec, status, observation, at).status
        messages.append(status.message)
        since.append(status.metrics_unavailable_since)
    assert messages[0] == (
        "holding at step 1 of 2 (10% canary) for 1m of 15m: metrics unavailable since"
        " 2025-01-01 00:01:00Z (for 0s): Prometheus at http://127.0.0.1:9090 is unreachable;"
        " waiting on accuracy, latency, error-rate"
    )
    assert (
        "metrics unavailable since 2025-01-01 00:01:00Z (for 2m): still down; waiting on"
        in messages[1]
    )
    assert "unavailable" not in messages[2]
    assert since == [START + timedelta(minutes=1)] * 2 + [None]


def test_paused_holds_without_counting_traffic_and_stops_the_clock():
    spec = spec_with()
    status = tick(spec, started(spec), arm(100), arm(900)).status
    paused = status.model_copy(update={"phase": Phase.PAUSED})
    decision = tick(spec, paused, arm(5000), GOOD_STABLE, timedelta(minutes=11))
    assert decision.action is Action.HOLD
    assert decision.weights == status.weights
    assert decision.status.counters.canary.total == status.counters.canary.total
    assert decision.status.step_started_at == START + timedelta(minutes=10)
    resumed = decision.status.model_copy(update={"phase": Phase.PROGRESSING})
    # 15 minutes after the start, but the step has only run 5: no deadline yet.
    later = tick(spec, resumed, arm(5100), arm(45_900), timedelta(minutes=15))
    assert later.action is Action.HOLD
    # 10 wrong labels before the pause and 10 after it; the 490 during it are left out.
    assert later.status.counters.canary.total.feedback_incorrect == pytest.approx(20)


def test_a_new_canary_version_restarts_at_the_first_step():
    spec = spec_with()
    advanced = tick(spec, started(spec), arm(5000), GOOD_STABLE).status
    assert advanced.step_index == 1
    newer = spec.model_copy(
        update={
            "spec": spec.spec.model_copy(
                update={"canary": spec.spec.canary.model_copy(update={"version": "v3"})}
            )
        }
    )
    decision = tick(newer, advanced, arm(6000), GOOD_STABLE, timedelta(minutes=2))
    status = decision.status
    assert decision.weights == Weights(stable=90, canary=10)
    assert (status.step_index, status.canary_version, status.reference) == (0, "v3", None)
    assert status.counters.canary.total.feedback_correct == 0
    assert "the analysis of v2 against v1 was dropped" in decision.message


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED])
def test_a_finished_rollout_holds_its_weights(phase):
    spec = spec_with()
    status = started(spec).model_copy(
        update={"phase": phase, "weights": Weights(stable=0, canary=100)}
    )
    decision = tick(spec, status, arm(2000, accuracy=0.5), GOOD_STABLE)
    assert decision.action is Action.HOLD
    assert decision.weights == Weights(stable=0, canary=100)
    assert decision.status.phase is phase


def test_a_stale_observation_changes_no_counts():
    spec = spec_with()
    status = tick(spec, started(spec), arm(100), arm(900)).status
    decision = tick(spec, status, arm(5000), GOOD_STABLE, timedelta(minutes=1))
    assert decision.action is Action.HOLD
    assert decision.status.counters == status.counters
    assert "not newer" in decision.reasons[0].message


def test_history_is_capped_and_the_status_survives_json():
    spec = spec_with()
    status = started(spec)
    for minute in range(1, HISTORY_LIMIT + 5):
        status = tick(
            spec, status, arm(10 * minute), arm(90 * minute), timedelta(minutes=minute)
        ).status
    assert len(status.history) == HISTORY_LIMIT
    assert status.history[-1].at == START + timedelta(minutes=HISTORY_LIMIT + 4)
    assert RolloutStatus.model_validate_json(status.model_dump_json()) == status
    assert '"canaryVersion":"v2"' in status.model_dump_json()


def test_the_promoted_condition_keeps_its_transition_time_while_unchanged():
    spec = spec_with()
    first = tick(spec, started(spec), arm(100), arm(900)).status
    second = tick(spec, first, arm(200), arm(1800), timedelta(minutes=2)).status
    assert second.conditions[0].last_transition_time == START
    assert second.conditions[0].message.startswith("holding at step 1 of 2")


def test_now_must_be_timezone_aware():
    spec = spec_with()
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(spec, RolloutStatus(), observe(timedelta(), arm(), arm()), datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("phase", "command", "action", "new_phase", "canary_weight"),
    [
        (Phase.PROGRESSING, "pause", Action.HOLD, Phase.PAUSED, 10),
        (Phase.PROGRESSING, "abort", Action.ROLLBACK, Phase.ROLLED_BACK, 0),
        (Phase.PAUSED, "abort", Action.ROLLBACK, Phase.ROLLED_BACK, 0),
        (Phase.PROGRESSING, "promote", Action.PROMOTE, Phase.SUCCEEDED, 100),
        (Phase.PAUSED, "resume", Action.HOLD, Phase.PROGRESSING, 10),
        (Phase.PROGRESSING, "resume", Action.HOLD, Phase.PROGRESSING, 10),  # not paused: ignored
        (Phase.ROLLED_BACK, "promote", Action.HOLD, Phase.ROLLED_BACK, 10),  # finished: ignored
    ],
)
def test_commands_override_the_analysis(phase, command, action, new_phase, canary_weight):
    spec = spec_with()
    status = started(spec).model_copy(update={"phase": phase})
    observation = observe(timedelta(minutes=1), arm(100), arm(900))
    request = CommandRequest(command, f"{command}:1")
    decision = apply_command(spec, status, request, observation, START + timedelta(minutes=1))
    assert decision.action is action
    assert decision.status.phase is new_phase
    assert decision.weights.canary == canary_weight


def test_resume_analyses_the_tick_at_once():
    spec = spec_with()
    status = started(spec).model_copy(update={"phase": Phase.PAUSED})
    observation = observe(timedelta(minutes=1), arm(5000), GOOD_STABLE)
    request = CommandRequest("resume", "resume:1")
    decision = apply_command(spec, status, request, observation, START + timedelta(minutes=1))
    assert decision.action is Action.ADVANCE
    assert decision.status.last_command == "resume:1"


def test_a_word_that_is_no_command_is_recorded_as_seen_and_changes_nothing():
    spec = spec_with()
    status = started(spec)
    observation = observe(timedelta(minutes=1), arm(), arm())
    request = CommandRequest.parse("skip:42")
    decision = apply_command(spec, status, request, observation, START + timedelta(minutes=1))
    assert decision.action is Action.HOLD
    assert decision.weights == status.weights
    assert decision.status.phase is status.phase
    assert decision.status.last_command == "skip:42"
    assert "'skip' ignored: not one of promote, abort, pause, resume" in decision.message


def test_every_decision_sets_the_same_three_conditions():
    spec = spec_with()
    rolled_back = tick(spec, started(spec), arm(2000, accuracy=0.8), GOOD_STABLE)
    kinds = {c.type: (c.status, c.reason) for c in rolled_back.status.conditions}
    assert kinds == {
        "Promoted": ("False", "RolledBack"),
        "Progressing": ("False", "RolledBack"),
        "Degraded": ("True", "RolledBack"),
    }


def _regressor(n: float, mae: float) -> ArmCounters:
    """A regressor's counters: n labels whose absolute errors average ``mae`` (half-normal)."""
    sigma = mae / math.sqrt(2 / math.pi)
    return ArmCounters(
        predictions=2 * n,
        feedback_measured=n,
        absolute_error_sum=n * mae,
        squared_error_sum=n * sigma**2,
        squared_error_squares_sum=n * 3 * sigma**4,
        requests=2 * n,
        server_errors=0,
        client_errors=0,
    )


@pytest.mark.parametrize(
    ("canary_mae", "action"), [(10.0, Action.ADVANCE), (13.0, Action.ROLLBACK)]
)
def test_a_regressor_is_judged_on_its_error(canary_mae: float, action: Action) -> None:
    spec = spec_with(accuracy=None, latency=None, error={"metric": "mae", "maxIncrease": 0.05})
    empty = _regressor(0, 0.0)
    begun = decide(spec, RolloutStatus(), observe(timedelta(), empty, empty), START).status
    decision = tick(spec, begun, _regressor(20_000, canary_mae), _regressor(180_000, 10.0))
    assert decision.action is action
    (error,) = (r for r in decision.reasons if r.metric == "error")
    assert error.canary == pytest.approx(canary_mae)
    assert error.threshold == pytest.approx(10.5)
