"""The analysis beyond the three built-in checks, from tables: the user's own metric checks,
forecasts at a hold, a deadline that pauses, labels that take time, a bake after promotion and
gates that must open before the rollout moves on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
import yaml

from mlcanary.rollout.checks import ErrorBudget, assess_accuracy, assess_error_rate
from mlcanary.rollout.commands import CommandRequest
from mlcanary.rollout.engine import apply_command, decide
from mlcanary.rollout.forecast import growth_needed, scaled
from mlcanary.rollout.gates import Confirm, GateOutcome
from mlcanary.rollout.observations import ArmCounters, MetricValues, Observation
from mlcanary.rollout.spec import (
    AccuracyCheck,
    ErrorRateCheck,
    Gate,
    ModelRollout,
    SpecError,
    parse_spec,
)
from mlcanary.rollout.status import Action, Phase, Reason, RolloutStatus, Verdict, Weights
from mlcanary.rollout.templates import render_query
from tests.rollout.support import GOOD_STABLE, SPEC, START, arm, observe, started, tick

QUERY = 'avg(low_confidence{model="{{ model }}", version="{{ version }}"}[{{ interval }}])'


def _spec(**spec: object) -> ModelRollout:
    document = yaml.safe_load(SPEC)
    analysis = spec.pop("analysis", {})
    assert isinstance(analysis, dict)
    document["spec"]["analysis"].update(analysis)
    document["spec"].update(spec)
    return parse_spec(document)


def _with_metric(**check: object) -> ModelRollout:
    metric = {"name": "low-confidence", "query": QUERY, "compare": {"maxRatio": 1.5}} | check
    return _spec(
        analysis={"accuracy": None, "latency": None, "errorRate": None, "metrics": [metric]}
    )


def _values(
    at: timedelta, canary: float | None, stable: float | None, name: str = "low-confidence"
) -> Observation:
    return Observation(
        timestamp=START + at, metrics={name: MetricValues(canary=canary, stable=stable)}
    )


def _run(
    spec: ModelRollout, values: Sequence[tuple[float | None, float | None]]
) -> list[tuple[Action, Verdict]]:
    status = started(spec)
    seen = []
    for minute, (canary, stable) in enumerate(values, start=1):
        at = timedelta(minutes=minute)
        decision = decide(spec, status, _values(at, canary, stable), START + at)
        status = decision.status
        (reason,) = [r for r in decision.reasons if r.metric == "low-confidence"]
        seen.append((decision.action, reason.verdict))
    return seen


INC, F, P, H, A, R = (
    Verdict.INCONCLUSIVE,
    Verdict.FAIL,
    Verdict.PASS,
    Action.HOLD,
    Action.ADVANCE,
    Action.ROLLBACK,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([(0.1, 0.1)] * 3, [(H, INC), (H, INC), (A, P)]),  # three in a row within 1.5 x stable
        ([(0.2, 0.1)] * 3, [(H, INC), (H, INC), (R, F)]),  # three in a row outside
        ([(0.2, 0.1), (0.1, 0.1), (0.2, 0.1), (0.2, 0.1)], [(H, INC)] * 4),  # streaks broken
        ([(0.1, 0.1), (None, 0.1), (0.1, 0.1), (0.1, 0.1)], [(H, INC)] * 4),  # a gap resets passes
        ([(0.1, None)] * 3, [(H, INC)] * 3),  # stable's value missing: no comparison, no pass
        ([(float("nan"), 0.1)] * 3, [(H, INC)] * 3),  # NaN never passes
    ],
    ids=["passes", "fails", "streaks-broken", "gap-resets", "no-stable", "nan"],
)
def test_a_metric_check_follows_its_streak_rule(values, expected):
    assert _run(_with_metric(), values) == expected


def test_a_range_check_judges_the_canary_alone_and_the_failure_limit_is_the_users():
    spec = _with_metric(compare=None, range={"max": 0.3}, failureLimit=1, minEvaluations=2)
    assert _run(spec, [(0.2, None), (0.2, None)]) == [(H, INC), (A, P)]
    assert _run(spec, [(0.31, 0.0)]) == [(R, F)]


def test_at_the_last_step_a_compared_check_uses_stables_last_value():
    spec = _with_metric(minEvaluations=1)
    advanced = decide(spec, started(spec), _values(timedelta(minutes=1), 0.1, 0.1), START)
    assert advanced.action is Action.ADVANCE
    assert advanced.status.metric_reference == {"low-confidence": 0.1}
    # Stable serves nothing: its query returns nothing, and the reference stands in.
    at = timedelta(minutes=2)
    decision = decide(spec, advanced.status, _values(at, 0.12, None), START + at)
    assert decision.action is Action.PROMOTE
    worse = decide(spec, advanced.status, _values(at, 0.2, None), START + at)
    (reason,) = worse.reasons
    assert reason.stable == 0.1
    assert reason.threshold == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"query": 'up{version="{{ versoin }}"}'}, "unknown placeholder 'versoin'"),
        ({"query": 'up{model="{{ model }}"}'}, "must select one version with {{ version }}"),
        ({"query": 'up{version="{{ version }}"}}'}, "unbalanced"),
        ({"range": {"max": 1}}, "set compare (canary against stable) or range"),
        ({"compare": {}}, "set maxRatio, minRatio, maxIncrease or maxDecrease"),
        ({"name": "accuracy"}, "'accuracy' is used twice or is a built-in check"),
        ({"compare": None, "range": {"min": 2, "max": 1}}, "min 2.0 is above max 1.0"),
    ],
)
def test_a_bad_metric_check_is_refused_naming_the_field(check, problem):
    with pytest.raises(SpecError) as caught:
        _with_metric(**check)
    ((path, message),) = caught.value.problems
    assert path.startswith("spec.analysis.metrics")
    assert problem in message


def test_metric_checks_need_prometheus_and_gate_names_are_distinct():
    with pytest.raises(SpecError, match=r"they need metrics\.provider prometheus"):
        _spec(
            metrics={"provider": "scrape"},
            analysis={"metrics": [{"name": "m", "query": QUERY, "range": {"max": 1}}]},
        )
    gate = {"name": "qa", "url": "http://127.0.0.1:9/confirm"}
    with pytest.raises(SpecError, match="gate name 'qa' is used twice"):
        _spec(gates=[gate, gate])


def test_placeholders_are_filled_in_escaped():
    query = render_query(
        QUERY, {"model": 'a"b', "version": "v1\\", "namespace": "ml", "interval": "30s"}
    )
    assert query == r'avg(low_confidence{model="a\"b", version="v1\\"}[30s])'


def test_scaled_counts_keep_their_proportions():
    counters = arm(1000)
    grown = scaled(counters, 3)
    assert grown.feedback_correct == 3 * counters.feedback_correct  # type: ignore[operator]
    assert grown.latency_buckets == {le: 3 * n for le, n in counters.latency_buckets.items()}  # type: ignore[union-attr]


def test_the_growth_a_check_needs_is_the_least_that_concludes():
    budget = ErrorBudget(alpha=0.005, beta=0.01, min_samples=200)
    check = ErrorRateCheck(max=0.01)

    def assess(canary: ArmCounters, stable: ArmCounters, b: ErrorBudget) -> Reason:
        return assess_error_rate(check, canary, stable, b)

    canary = arm(50, requests=100)  # 100 requests, no 5xx: too few to pass
    growth = growth_needed(assess, canary, GOOD_STABLE, budget, stable_grows=True)
    assert growth is not None
    assert assess(scaled(canary, growth), GOOD_STABLE, budget).verdict is Verdict.PASS
    assert (
        assess(scaled(canary, growth * 0.95), GOOD_STABLE, budget).verdict is Verdict.INCONCLUSIVE
    )
    # An accuracy exactly as good as stable's, at a fixed stable reference of few labels,
    # cannot be told from a drop at any rate within reach.
    few = arm(300)
    accuracy = AccuracyCheck(max_drop=0.001)

    def assess_acc(canary: ArmCounters, stable: ArmCounters, b: ErrorBudget) -> Reason:
        return assess_accuracy(accuracy, canary, stable, b)

    assert growth_needed(assess_acc, few, few, budget, stable_grows=False) is None


def test_a_hold_forecasts_each_inconclusive_check_and_says_when_it_cannot_finish_in_time():
    spec = _spec(analysis={"accuracy": None, "latency": None, "maxDuration": "4m"})
    # 2 requests a second for a minute: the 5xx check needs a few hundred more.
    decision = tick(spec, started(spec), arm(60, requests=120), GOOD_STABLE)
    (reason,) = decision.reasons
    assert reason.verdict is Verdict.INCONCLUSIVE
    assert reason.forecast_seconds is not None
    assert reason.forecast_samples is not None
    assert reason.forecast_seconds == pytest.approx(60 * reason.forecast_samples / 120, rel=1e-6)
    assert "at this rate about" in reason.message
    assert reason.forecast_seconds > 3 * 60  # more than the 3 minutes left
    assert decision.message.endswith(
        "; at this rate error-rate cannot conclude within maxDuration (3m left)"
    )


def test_an_inconclusive_deadline_can_pause_for_a_person_who_resumes_with_a_fresh_one():
    spec = _spec(analysis={"inconclusive": "pause", "maxDuration": "15m"})
    status = started(spec)
    paused = tick(spec, status, arm(400, accuracy=0.89), GOOD_STABLE, timedelta(minutes=15))
    assert paused.action is Action.HOLD
    assert paused.status.phase is Phase.PAUSED
    assert paused.weights == Weights(stable=90, canary=10)
    assert paused.message.startswith("paused at step 1 of 2 (10% canary): still inconclusive")
    at = timedelta(minutes=20)
    resumed = apply_command(
        spec,
        paused.status,
        CommandRequest("resume", "k1"),
        observe(at, arm(500, accuracy=0.89), GOOD_STABLE),
        START + at,
    )
    assert resumed.status.phase is Phase.PROGRESSING
    assert resumed.status.step_started_at == START + at  # another maxDuration from now
    total = resumed.status.counters.canary.total  # the step's counts go on from where they were
    assert (total.feedback_correct, total.feedback_incorrect) == (445, 55)


def test_label_based_checks_wait_for_the_label_delay_and_pending_labels_are_counted():
    spec = _spec(analysis={"labelDelay": "5m", "latency": None, "errorRate": None})
    early = tick(spec, started(spec), arm(5000), GOOD_STABLE, timedelta(minutes=2))
    (accuracy,) = early.reasons
    assert accuracy.verdict is Verdict.INCONCLUSIVE  # it would pass without the delay
    assert accuracy.message.startswith("labels take up to 5m (labelDelay)")
    assert early.action is Action.HOLD
    # arm(n) counts 2n predictions for n labels: n are still pending per version.
    assert early.status.pending_labels == {"v1": 45_000, "v2": 5000}
    later = tick(spec, started(spec), arm(5000), GOOD_STABLE, timedelta(minutes=5))
    assert later.action is Action.ADVANCE


def _bake_spec() -> ModelRollout:
    return _spec(promotion={"bake": "30m"})


def _baking() -> RolloutStatus:
    spec = _bake_spec()
    advanced = tick(spec, started(spec), arm(5000), GOOD_STABLE).status
    promoted = tick(spec, advanced, arm(10_000), ArmCounters(), timedelta(minutes=2))
    assert promoted.action is Action.PROMOTE
    assert promoted.status.phase is Phase.BAKING
    assert promoted.weights == Weights(stable=0, canary=100)
    assert "baking 30m with v1 deployed at weight 0" in promoted.message
    status: RolloutStatus = promoted.status
    return status


def test_a_quiet_bake_ends_in_success():
    spec, status = _bake_spec(), _baking()
    during = tick(spec, status, arm(12_000), ArmCounters(), timedelta(minutes=20))
    assert (during.action, during.status.phase) == (Action.HOLD, Phase.BAKING)
    done = tick(spec, during.status, arm(14_000), ArmCounters(), timedelta(minutes=32))
    assert (done.action, done.status.phase) == (Action.PROMOTE, Phase.SUCCEEDED)
    assert done.status.conditions[0].status == "True"


def test_a_regression_during_the_bake_sends_all_traffic_back_to_the_old_stable():
    spec, status = _bake_spec(), _baking()
    # The bake's window starts at 10,000 labels; the 4,000 since are 80% correct.
    worse = arm(14_000, accuracy=(10_000 * 0.9 + 4000 * 0.8) / 14_000)
    decision = tick(spec, status, worse, ArmCounters(), timedelta(minutes=10))
    assert (decision.action, decision.status.phase) == (Action.ROLLBACK, Phase.ROLLED_BACK)
    assert decision.weights == Weights(stable=100, canary=0)
    assert decision.message.startswith("rolled back during the bake: accuracy:")


def _confirm(open_gates: set[str]) -> tuple[Confirm, list[list[str]]]:
    asked: list[list[str]] = []

    def confirm(gates: Sequence[Gate]) -> list[GateOutcome]:
        asked.append([g.name for g in gates])
        return [
            GateOutcome(
                g.name, g.name in open_gates, "HTTP 200" if g.name in open_gates else "HTTP 503"
            )
            for g in gates
        ]

    return confirm, asked


def test_a_closed_gate_holds_past_the_deadline_and_an_open_one_lets_the_rollout_on():
    spec = _spec(gates=[{"name": "qa", "url": "http://127.0.0.1:9/ok", "before": "advance"}])
    confirm, asked = _confirm(set())
    at = timedelta(minutes=20)  # past maxDuration: a gate holds, it never rolls back
    held = decide(spec, started(spec), observe(at, arm(5000), GOOD_STABLE), START + at, confirm)
    assert (held.action, held.status.phase, held.status.step_index) == (
        Action.HOLD,
        Phase.PROGRESSING,
        0,
    )
    assert held.message.endswith("waiting for gate qa to advance: qa: HTTP 503")
    assert [r.verdict for r in held.reasons if r.metric == "gate:qa"] == [Verdict.INCONCLUSIVE]
    confirm, asked = _confirm({"qa"})
    moved = decide(spec, started(spec), observe(at, arm(5000), GOOD_STABLE), START + at, confirm)
    assert moved.action is Action.ADVANCE
    assert asked == [["qa"]]


def test_gates_are_asked_only_when_the_rollout_would_move_past_them():
    spec = _spec(gates=[{"name": "release", "url": "http://127.0.0.1:9/ok"}])  # before promote
    confirm, asked = _confirm(set())
    status = started(spec)
    holding = decide(
        spec, status, observe(timedelta(minutes=1), arm(100), GOOD_STABLE), START, confirm
    )
    assert holding.action is Action.HOLD
    advanced = decide(
        spec, status, observe(timedelta(minutes=1), arm(5000), GOOD_STABLE), START, confirm
    )
    assert advanced.action is Action.ADVANCE
    assert asked == []
    at = timedelta(minutes=2)
    held = decide(
        spec, advanced.status, observe(at, arm(10_000), ArmCounters()), START + at, confirm
    )
    assert (held.action, held.status.phase) == (Action.HOLD, Phase.PROGRESSING)
    assert asked == [["release"]]
    no_caller = decide(spec, advanced.status, observe(at, arm(10_000), ArmCounters()), START + at)
    assert "no gate caller configured" in no_caller.message
