import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest
import yaml

from mlcanary.rollout.decision import (
    ErrorBudget,
    apply_command,
    assess_accuracy,
    assess_error_rate,
    assess_latency,
    assess_latency_max,
    decide,
    error_budget,
)
from mlcanary.rollout.observations import (
    ArmCounters,
    CounterWindow,
    Exceedance,
    Observation,
    exceedance,
    histogram_quantile,
)
from mlcanary.rollout.spec import AccuracyCheck, ErrorRateCheck, LatencyCheck, ModelRollout
from mlcanary.rollout.status import HISTORY_LIMIT, Action, Phase, RolloutStatus, Verdict, Weights

START = datetime(2025, 1, 1, tzinfo=UTC)
BOUNDS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, math.inf)
BUDGET = ErrorBudget(alpha=0.01 / 6, beta=0.01, min_samples=200)

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


def _spec(**analysis: object) -> ModelRollout:
    document = yaml.safe_load(SPEC)
    document["spec"]["analysis"].update(analysis)
    return ModelRollout.model_validate(document)


def _histogram(count: float, median: float = 0.04) -> dict[float, float]:
    """Expected cumulative counts of `count` log-normal latencies (sigma 0.5)."""
    latency = NormalDist(math.log(median), 0.5)
    return {le: count * (1.0 if math.isinf(le) else latency.cdf(math.log(le))) for le in BOUNDS}


def _arm(
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
        latency_buckets=_histogram(requests - client_errors, median),
    )


def _observe(at: timedelta, canary: ArmCounters, stable: ArmCounters) -> Observation:
    return Observation(timestamp=START + at, canary=canary, stable=stable)


def _started(spec: ModelRollout) -> RolloutStatus:
    decision = decide(spec, RolloutStatus(), _observe(timedelta(), _arm(), _arm()), START)
    return decision.status


def _tick(
    spec: ModelRollout,
    status: RolloutStatus,
    canary: ArmCounters,
    stable: ArmCounters,
    at: timedelta = timedelta(minutes=1),
):
    return decide(spec, status, _observe(at, canary, stable), START + at)


GOOD_STABLE = _arm(45_000)


@pytest.mark.parametrize(
    ("canary", "action", "verdicts"),
    [
        (
            _arm(100),
            Action.HOLD,
            {"accuracy": Verdict.INCONCLUSIVE, "error-rate": Verdict.INCONCLUSIVE},
        ),
        (_arm(5000), Action.ADVANCE, {"accuracy": Verdict.PASS, "latency": Verdict.PASS}),
        (_arm(5000, accuracy=0.95), Action.ADVANCE, {"accuracy": Verdict.PASS}),
        (_arm(2000, accuracy=0.8), Action.ROLLBACK, {"accuracy": Verdict.FAIL}),
        (_arm(400, accuracy=0.89), Action.HOLD, {"accuracy": Verdict.INCONCLUSIVE}),
        (_arm(5000, median=0.08), Action.ROLLBACK, {"latency": Verdict.FAIL}),
        (_arm(5000, server_errors=500), Action.ROLLBACK, {"error-rate": Verdict.FAIL}),
        (_arm(5000, client_errors=3000), Action.ADVANCE, {"error-rate": Verdict.PASS}),
        (_arm(5000, server_errors=100), Action.HOLD, {"error-rate": Verdict.INCONCLUSIVE}),
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
    spec = _spec()
    decision = _tick(spec, _started(spec), canary, GOOD_STABLE)
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
    spec = _spec()
    decision = decide(spec, RolloutStatus(), _observe(timedelta(), _arm(), _arm()), START)
    status = decision.status
    assert decision.action is Action.HOLD
    assert decision.weights == Weights(stable=90, canary=10)
    assert (status.phase, status.step_index) == (Phase.PROGRESSING, 0)
    assert (status.stable_version, status.canary_version) == ("v1", "v2")
    assert status.spec_hash == spec.spec_hash()
    assert status.conditions[0].status == "Unknown"


def test_advance_then_promote_compares_the_last_step_with_stable_reference():
    spec = _spec()
    advanced = _tick(spec, _started(spec), _arm(5000), GOOD_STABLE).status
    assert advanced.step_index == 1
    assert advanced.reference is not None
    assert advanced.reference.feedback_correct == GOOD_STABLE.feedback_correct
    assert advanced.counters.canary.total.feedback_correct == 0
    # Stable serves nothing now: its queries may even fail without blocking the decision.
    promoted = _tick(spec, advanced, _arm(10_000), ArmCounters(), timedelta(minutes=2))
    assert promoted.action is Action.PROMOTE
    assert promoted.status.phase is Phase.SUCCEEDED
    assert promoted.weights == Weights(stable=0, canary=100)
    accuracy = next(r for r in promoted.reasons if r.metric == "accuracy")
    assert accuracy.stable == pytest.approx(0.9)
    assert promoted.status.conditions[0].status == "True"


def test_a_regression_at_the_last_step_rolls_back():
    spec = _spec()
    advanced = _tick(spec, _started(spec), _arm(5000), GOOD_STABLE).status
    # 5000 labels were counted at the first step; the 3000 since are 80% correct.
    canary = _arm(5000 + 3000, accuracy=(5000 * 0.9 + 3000 * 0.8) / 8000)
    decision = _tick(spec, advanced, canary, GOOD_STABLE, timedelta(minutes=2))
    assert decision.action is Action.ROLLBACK
    assert decision.status.phase is Phase.ROLLED_BACK
    assert decision.status.conditions[0].status == "False"


@pytest.mark.parametrize(
    ("elapsed", "action"),
    [(timedelta(minutes=14, seconds=59), Action.HOLD), (timedelta(minutes=15), Action.ROLLBACK)],
)
def test_inconclusive_at_max_duration_rolls_back(elapsed, action):
    spec = _spec()
    decision = _tick(spec, _started(spec), _arm(400, accuracy=0.89), GOOD_STABLE, elapsed)
    assert decision.action is action
    if action is Action.ROLLBACK:
        assert decision.reasons[-1].metric == "analysis"
        assert "maxDuration 15m" in decision.message


@pytest.mark.parametrize("missing", [None, math.nan, -1.0])
def test_a_failed_query_holds_even_when_the_counts_so_far_would_pass(missing):
    spec = _spec()
    status = _tick(spec, _started(spec), _arm(5000, requests=100), GOOD_STABLE).status
    assert status.phase is Phase.PROGRESSING
    canary = ArmCounters.model_validate(
        {**_arm(5000, requests=10_000).model_dump(), "feedbackCorrect": missing}
    )
    decision = _tick(spec, status, canary, GOOD_STABLE, timedelta(minutes=2))
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
    spec = _spec()
    status = _started(spec)
    for minute in range(1, 16):
        decision = decide(
            spec,
            status,
            Observation(timestamp=START + timedelta(minutes=minute)),
            START + timedelta(minutes=minute),
        )
        status = decision.status
        assert decision.action is (Action.HOLD if minute < 15 else Action.ROLLBACK)
    assert status.counters.failed_queries == 15


def test_paused_holds_without_counting_traffic_and_stops_the_clock():
    spec = _spec()
    status = _tick(spec, _started(spec), _arm(100), _arm(900)).status
    paused = status.model_copy(update={"phase": Phase.PAUSED})
    decision = _tick(spec, paused, _arm(5000), GOOD_STABLE, timedelta(minutes=11))
    assert decision.action is Action.HOLD
    assert decision.weights == status.weights
    assert decision.status.counters.canary.total == status.counters.canary.total
    assert decision.status.step_started_at == START + timedelta(minutes=10)
    resumed = decision.status.model_copy(update={"phase": Phase.PROGRESSING})
    # 15 minutes after the start, but the step has only run 5: no deadline yet.
    later = _tick(spec, resumed, _arm(5100), _arm(45_900), timedelta(minutes=15))
    assert later.action is Action.HOLD
    # 10 wrong labels before the pause and 10 after it; the 490 during it are left out.
    assert later.status.counters.canary.total.feedback_incorrect == pytest.approx(20)


def test_a_new_canary_version_restarts_at_the_first_step():
    spec = _spec()
    advanced = _tick(spec, _started(spec), _arm(5000), GOOD_STABLE).status
    assert advanced.step_index == 1
    newer = spec.model_copy(
        update={
            "spec": spec.spec.model_copy(
                update={"canary": spec.spec.canary.model_copy(update={"version": "v3"})}
            )
        }
    )
    decision = _tick(newer, advanced, _arm(6000), GOOD_STABLE, timedelta(minutes=2))
    status = decision.status
    assert decision.weights == Weights(stable=90, canary=10)
    assert (status.step_index, status.canary_version, status.reference) == (0, "v3", None)
    assert status.counters.canary.total.feedback_correct == 0
    assert "the analysis of v2 against v1 was dropped" in decision.message


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED])
def test_a_finished_rollout_holds_its_weights(phase):
    spec = _spec()
    status = _started(spec).model_copy(
        update={"phase": phase, "weights": Weights(stable=0, canary=100)}
    )
    decision = _tick(spec, status, _arm(2000, accuracy=0.5), GOOD_STABLE)
    assert decision.action is Action.HOLD
    assert decision.weights == Weights(stable=0, canary=100)
    assert decision.status.phase is phase


def test_a_stale_observation_changes_no_counts():
    spec = _spec()
    status = _tick(spec, _started(spec), _arm(100), _arm(900)).status
    decision = _tick(spec, status, _arm(5000), GOOD_STABLE, timedelta(minutes=1))
    assert decision.action is Action.HOLD
    assert decision.status.counters == status.counters
    assert "not newer" in decision.reasons[0].message


def test_history_is_capped_and_the_status_survives_json():
    spec = _spec()
    status = _started(spec)
    for minute in range(1, HISTORY_LIMIT + 5):
        status = _tick(
            spec, status, _arm(10 * minute), _arm(90 * minute), timedelta(minutes=minute)
        ).status
    assert len(status.history) == HISTORY_LIMIT
    assert status.history[-1].at == START + timedelta(minutes=HISTORY_LIMIT + 4)
    assert RolloutStatus.model_validate_json(status.model_dump_json()) == status
    assert '"canaryVersion":"v2"' in status.model_dump_json()


def test_the_promoted_condition_keeps_its_transition_time_while_unchanged():
    spec = _spec()
    first = _tick(spec, _started(spec), _arm(100), _arm(900)).status
    second = _tick(spec, first, _arm(200), _arm(1800), timedelta(minutes=2)).status
    assert second.conditions[0].last_transition_time == START
    assert second.conditions[0].message.startswith("holding at step 1 of 2")


def test_now_must_be_timezone_aware():
    spec = _spec()
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(spec, RolloutStatus(), _observe(timedelta(), _arm(), _arm()), datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("analysis", "steps", "alpha"),
    [
        ({}, 2, 0.01 / 6),
        ({"latency": {"maxMs": 300}}, 2, 0.01 / 8),
        ({"latency": None, "errorRate": None}, 3, 0.01 / 3),
    ],
)
def test_alpha_is_shared_by_every_rollback_test(analysis, steps, alpha):
    budget = error_budget(_spec(**analysis).spec.analysis, steps)
    assert budget.alpha == pytest.approx(alpha)
    assert budget.beta == 0.01


@pytest.mark.parametrize(
    ("canary", "stable", "max_drop", "verdict"),
    [
        (ArmCounters(), _arm(5000), 0.02, Verdict.INCONCLUSIVE),
        (_arm(199), _arm(5000), 0.02, Verdict.INCONCLUSIVE),
        (_arm(5000), _arm(150), 0.02, Verdict.INCONCLUSIVE),
        (_arm(5000, accuracy=0.90), _arm(45_000, accuracy=0.90), 0.02, Verdict.PASS),
        (_arm(5000, accuracy=0.87), _arm(45_000, accuracy=0.90), 0.02, Verdict.FAIL),
        (_arm(1000, accuracy=0.89), _arm(9000, accuracy=0.90), 0.02, Verdict.INCONCLUSIVE),
        (_arm(1000, accuracy=0.89), _arm(9000, accuracy=0.90), 0.10, Verdict.PASS),
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
        (0.04, 5000, _histogram(50_000), Verdict.PASS, "under the limit"),
        (0.044, 5000, _histogram(50_000), Verdict.PASS, "under the limit"),  # 10% slower is fine
        (0.05, 5000, _histogram(50_000), Verdict.INCONCLUSIVE, "not conclusive yet"),  # at 1.25
        (0.06, 5000, _histogram(50_000), Verdict.FAIL, "significantly over the limit"),
        (0.04, 150, _histogram(50_000), Verdict.INCONCLUSIVE, "200 of each needed"),
        (0.04, 5000, {0.01: 0, math.inf: 50_000}, Verdict.INCONCLUSIVE, "largest finite bucket"),
        (0.04, 5000, None, Verdict.INCONCLUSIVE, "no latency histogram"),
    ],
)
def test_assess_latency(canary_median, canary_requests, stable_buckets, verdict, words):
    canary = ArmCounters(latency_buckets=_histogram(canary_requests, canary_median))
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
    canary = ArmCounters(latency_buckets=_histogram(5000, median))
    reason = assess_latency_max(LatencyCheck(max_ms=max_ms), canary, ArmCounters(), BUDGET)
    assert reason.verdict is verdict
    assert reason.threshold == pytest.approx(max_ms / 1000)


def test_assess_latency_max_needs_a_bound():
    with pytest.raises(ValueError, match="maxMs"):
        assess_latency_max(LatencyCheck(), _arm(5000), _arm(5000), BUDGET)


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
        ErrorRateCheck(max=0.01), canary, _arm(50_000, server_errors=50), BUDGET
    )
    assert reason.verdict is verdict
    assert reason.stable == pytest.approx(0.0005)


@pytest.mark.parametrize(
    ("values", "total"),
    [
        ([100, 150, 180], 80),
        ([100, 150, 20, 50], 80),  # a reset counts nothing for its tick, then 30
        ([100, None, 160], 60),  # a failed query in between: the next tick counts the gap
        ([None, 10, 30], 20),  # first seen late: that tick is the baseline
        ([math.nan, 10, 30], 20),
    ],
)
def test_counter_windows_count_increases_tick_by_tick(values, total):
    window = CounterWindow()
    for value in values:
        window = window.update(ArmCounters(requests=value))
    assert window.total.requests == total


def test_a_reset_in_one_counter_rebases_the_whole_arm():
    """A summed counter can drop for one outcome and not the other: count neither that tick."""
    window = CounterWindow().update(ArmCounters(feedback_correct=900, feedback_incorrect=100))
    window = window.update(ArmCounters(feedback_correct=500, feedback_incorrect=130))
    assert (window.total.feedback_correct, window.total.feedback_incorrect) == (0, 0)
    window = window.update(ArmCounters(feedback_correct=590, feedback_incorrect=140))
    assert (window.total.feedback_correct, window.total.feedback_incorrect) == (90, 10)


def test_histograms_reset_together_and_paused_traffic_is_skipped():
    window = CounterWindow().update(ArmCounters(latency_buckets={0.1: 10, math.inf: 20}))
    window = window.update(ArmCounters(latency_buckets={0.1: 14, math.inf: 28}))
    assert window.total.latency_buckets == {0.1: 4, math.inf: 8}
    window = window.update(ArmCounters(latency_buckets={0.1: 15, math.inf: 2}))
    assert window.total.latency_buckets == {0.1: 4, math.inf: 8}
    window = window.update(ArmCounters(latency_buckets={0.1: 19, math.inf: 12}), count=False)
    window = window.update(ArmCounters(latency_buckets={0.1: 20, math.inf: 14}))
    assert window.total.latency_buckets == {0.1: 5, math.inf: 10}


def test_a_histogram_without_its_inf_bucket_is_missing():
    assert ArmCounters(latency_buckets={0.1: 10}).latency_buckets is None
    assert ArmCounters(latency_buckets={0.1: math.nan, math.inf: 3}).latency_buckets is None


@pytest.mark.parametrize(
    ("buckets", "quantile", "expected"),
    [
        ({0.1: 50, 0.2: 100, math.inf: 100}, 0.5, 0.1),
        ({0.1: 50, 0.2: 100, math.inf: 100}, 0.75, 0.15),
        ({0.1: 50, 0.2: 90, math.inf: 100}, 0.95, math.inf),
        ({0.1: 60, 0.2: 50, math.inf: 100}, 0.5, 0.1 * 50 / 60),  # non-monotonic: made monotonic
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(buckets, quantile, expected):
    assert histogram_quantile(quantile, buckets) == pytest.approx(expected)


def test_histogram_quantile_of_an_empty_histogram_is_nan():
    assert math.isnan(histogram_quantile(0.95, {0.1: 0, math.inf: 0}))


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.15, Exceedance(30, 30)),
        (0.05, Exceedance(75, 75)),
        (0.5, Exceedance(0, 10)),  # beyond the last finite bucket: only bounds are known
    ],
)
def test_exceedance_counts_requests_above_a_threshold(threshold, expected):
    buckets = {0.1: 50, 0.2: 90, math.inf: 100}
    assert tuple(exceedance(buckets, threshold)) == pytest.approx(tuple(expected))


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
    spec = _spec()
    status = _started(spec).model_copy(update={"phase": phase})
    observation = _observe(timedelta(minutes=1), _arm(100), _arm(900))
    decision = apply_command(spec, status, command, observation, START + timedelta(minutes=1))
    assert decision.action is action
    assert decision.status.phase is new_phase
    assert decision.weights.canary == canary_weight


def test_resume_analyses_the_tick_at_once():
    spec = _spec()
    status = _started(spec).model_copy(update={"phase": Phase.PAUSED})
    observation = _observe(timedelta(minutes=1), _arm(5000), GOOD_STABLE)
    decision = apply_command(spec, status, "resume", observation, START + timedelta(minutes=1))
    assert decision.action is Action.ADVANCE


def test_unknown_commands_are_refused():
    spec = _spec()
    observation = _observe(timedelta(minutes=1), _arm(), _arm())
    with pytest.raises(ValueError, match="unknown command 'skip'"):
        apply_command(spec, _started(spec), "skip", observation, START + timedelta(minutes=1))
