"""The shadow step: its spec, its checks (from tables, and their error rates by seeded
simulation under repeated looks), its place in the state machine, and when copies flow."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import yaml

from mlcanary.rollout.checks import ErrorBudget, against_limit
from mlcanary.rollout.controller import Controller
from mlcanary.rollout.engine import decide
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.mirror.memory import MemoryMirror
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.routers.base import Route, RouteTable
from mlcanary.rollout.routers.memory import MemoryRouter
from mlcanary.rollout.sequential import Moments
from mlcanary.rollout.shadow import (
    assess_agreement,
    assess_difference,
    difference_crossings,
    mirror_target,
    shadow_snapshot,
    shadow_task_problems,
    step_checks,
    top_flips,
)
from mlcanary.rollout.spec import SHADOW, ModelRollout, ShadowCheck, SpecError, parse_spec
from mlcanary.rollout.status import Action, Phase, RolloutStatus, Verdict, Weights
from mlcanary.rollout.store.memory import MemoryStatusStore
from tests.rollout.support import GOOD_STABLE, SPEC, START, arm, observe, tick
from tests.rollout.test_controller import Clock, FakeWorkloads
from tests.rollout.test_controller import arm as stream_arm

CLASSIFIER = ShadowCheck(min_agreement=0.9)
REGRESSOR = ShadowCheck(max_mean_difference=1.0)
BUDGET = ErrorBudget(alpha=0.01, beta=0.01, min_samples=200)


def _document(**spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC)
    document["spec"]["steps"] = [SHADOW, 10, 100]
    document["spec"]["analysis"]["shadow"] = {"fraction": 1.0, "minAgreement": 0.9}
    document["spec"].update(spec)
    return document


def shadowed(**analysis: Any) -> ModelRollout:
    document = _document()
    document["spec"]["analysis"].update(analysis)
    return parse_spec(document)


def compared(agreed: float, disagreed: float, **more: Any) -> ArmCounters:
    return ArmCounters(shadow_agreed=agreed, shadow_disagreed=disagreed, **more)


def differences(values: list[float]) -> ArmCounters:
    return ArmCounters(
        shadow_measured=float(len(values)),
        shadow_difference_sum=float(sum(values)),
        shadow_difference_squares_sum=float(sum(v * v for v in values)),
    )


# The spec


def test_steps_may_start_with_shadow_and_the_canary_then_gets_no_client_traffic():
    spec = shadowed().spec
    assert spec.steps == [SHADOW, 10, 100]
    assert [spec.canary_percent(i) for i in range(3)] == [0, 10, 100]
    assert spec.step_label(0) == "shadow, canary answers compared"
    assert spec.analysis.shadow == ShadowCheck(fraction=1.0, min_agreement=0.9)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"steps": [10, SHADOW, 100]}, "spec.steps: only the first step may be shadow"),
        ({"steps": ["mirror", 10, 100]}, "spec.steps[0]: a step is a canary percentage"),
        ({"steps": [SHADOW, 0, 100]}, "spec.steps[1]: Input should be greater than 0"),
        ({"steps": [SHADOW, 50, 10, 100]}, "spec.steps: must be strictly increasing"),
        ({"steps": [SHADOW, 50]}, "spec.steps: must end at 100"),
        ({"steps": [10, 100]}, "spec: analysis.shadow is set but the steps do not start"),
    ],
)
def test_a_bad_shadow_spec_is_refused_naming_the_field(change, problem):
    with pytest.raises(SpecError) as error:
        parse_spec(_document(**change))
    assert str(error.value).startswith(problem)


@pytest.mark.parametrize(
    ("shadow", "problem"),
    [
        (None, "spec: steps start with shadow: set analysis.shadow"),
        ({"fraction": 1.0}, "spec.analysis.shadow: set minAgreement (a classifier)"),
        (
            {"minAgreement": 0.9, "maxMeanDifference": 1.0},
            "spec.analysis.shadow: set minAgreement",
        ),
        ({"minAgreement": 0.9, "fraction": 0}, "spec.analysis.shadow.fraction: Input should be"),
        ({"minAgreement": 1.5}, "spec.analysis.shadow.minAgreement: Input should be less"),
        ({"maxMeanDifference": -1}, "spec.analysis.shadow.maxMeanDifference: Input should be"),
        ({"minAgreement": 0.9, "fractoin": 0.5}, "spec.analysis.shadow.fractoin: Extra inputs"),
    ],
)
def test_a_bad_shadow_check_is_refused_naming_the_field(shadow, problem):
    document = _document()
    document["spec"]["analysis"]["shadow"] = shadow
    with pytest.raises(SpecError) as error:
        parse_spec(document)
    assert str(error.value).startswith(problem)


def test_the_shadow_check_must_fit_the_task():
    analysis = shadowed().spec.analysis
    assert shadow_task_problems(analysis, "classification") == []
    [(field, _)] = shadow_task_problems(analysis, "regression")
    assert field == "spec.analysis.shadow.minAgreement"
    regressor = shadowed(shadow={"maxMeanDifference": 0.5}, accuracy=None, error={})
    [(field, _)] = shadow_task_problems(regressor.spec.analysis, "classification")
    assert field == "spec.analysis.shadow.maxMeanDifference"


# The checks, from tables


@pytest.mark.parametrize(
    ("canary", "verdict", "words"),
    [
        (ArmCounters(), Verdict.INCONCLUSIVE, "no comparisons counted yet"),
        (compared(150, 0), Verdict.INCONCLUSIVE, "150 rows compared: 200 needed"),
        (compared(1000, 0), Verdict.PASS, "agreed with stable on 100.00% of 1000 rows"),
        (compared(970, 30), Verdict.PASS, "above the bound"),
        (compared(100, 900), Verdict.FAIL, "significantly below the bound"),
        (compared(880, 120), Verdict.INCONCLUSIVE, "not conclusive yet"),
        (compared(100, 900, shadow_lost=7), Verdict.FAIL, "(7 copies lost"),
    ],
    ids=["nothing", "too-few", "identical", "close", "permuted", "at-the-bound", "lost"],
)
def test_agreement(canary, verdict, words):
    reason = assess_agreement(CLASSIFIER, canary, ArmCounters(), BUDGET)
    assert (reason.metric, reason.verdict) == ("agreement", verdict)
    assert words in reason.message
    assert reason.threshold == 0.9


def test_a_failed_agreement_names_the_commonest_flips():
    flips = {"0\u21921": 90.0, "1\u21922": 95.0, "2\u21923": 80.0, "3\u21924": 10.0}
    reason = assess_agreement(CLASSIFIER, compared(0, 275, shadow_flips=flips), GOOD_STABLE, BUDGET)
    assert reason.verdict is Verdict.FAIL
    assert reason.message.endswith("1\u21922 x95, 0\u21921 x90, 2\u21923 x80")
    assert reason.canary == 0.0


@pytest.mark.parametrize(
    ("canary", "verdict"),
    [
        (ArmCounters(), Verdict.INCONCLUSIVE),
        (differences([0.0] * 100), Verdict.INCONCLUSIVE),
        (differences([0.0] * 300), Verdict.PASS),
        (differences([0.2, 0.4] * 200), Verdict.PASS),
        (differences([3.0, 5.0] * 200), Verdict.FAIL),
        (differences([0.9, 1.1] * 150), Verdict.INCONCLUSIVE),
    ],
    ids=["nothing", "too-few", "identical", "close", "far", "at-the-bound"],
)
def test_mean_absolute_difference(canary, verdict):
    reason = assess_difference(REGRESSOR, canary, ArmCounters(), BUDGET)
    assert (reason.metric, reason.verdict) == ("difference", verdict)


def test_top_flips_are_the_commonest_first_and_leave_out_zeros():
    assert top_flips({"a\u2192b": 1.0, "b\u2192c": 5.0, "c\u2192a": 0.0}) == [
        ("b\u2192c", 5.0),
        ("a\u2192b", 1.0),
    ]
    assert top_flips(None) == []


# Error rates under repeated looks


STREAMS, LOOKS, BATCH = 4000, 60, 200  # rows compared per interval


def _tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / STREAMS)


def _agreement_outcomes(
    seed: int, disagreeing: float, alpha: float, beta: float
) -> tuple[float, float]:
    """Fractions of streams that fail and that pass first, through `against_limit` itself."""
    rng = np.random.default_rng(seed)
    counts = np.cumsum(rng.binomial(BATCH, disagreeing, (STREAMS, LOOKS)), axis=1)
    budget = ErrorBudget(alpha, beta, BATCH)
    outcomes = []
    for stream in counts:
        for look, disagreed in enumerate(stream.tolist(), start=1):
            verdict = against_limit(disagreed, disagreed, BATCH * look, 0.1, budget)
            if verdict is not Verdict.INCONCLUSIVE:
                outcomes.append(verdict)
                break
    return outcomes.count(Verdict.FAIL) / STREAMS, outcomes.count(Verdict.PASS) / STREAMS


def test_agreement_at_the_bound_fails_at_most_alpha_and_passes_at_most_beta_of_the_time():
    failed, passed = _agreement_outcomes(81, disagreeing=0.1, alpha=0.05, beta=0.05)
    assert failed <= 0.05 + _tolerance(0.05)
    assert passed <= 0.05 + _tolerance(0.05)


def test_agreement_decides_a_clear_canary_within_the_horizon():
    failed, passed = _agreement_outcomes(82, disagreeing=0.05, alpha=0.01, beta=0.01)
    assert failed == 0.0
    assert passed > 0.99
    failed, passed = _agreement_outcomes(83, disagreeing=0.2, alpha=0.01, beta=0.01)
    assert failed > 0.99
    assert passed == 0.0


def _difference_outcomes(seed: int, draw: Any, alpha: float, beta: float) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    sums, squares = np.empty((STREAMS, LOOKS)), np.empty((STREAMS, LOOKS))
    for look in range(LOOKS):  # one look at a time keeps the draws to a few MB
        values = draw(rng, (STREAMS, BATCH))
        sums[:, look], squares[:, look] = values.sum(axis=1), (values**2).sum(axis=1)
    rows = BATCH * np.arange(1, LOOKS + 1)
    moments = Moments(rows, np.cumsum(sums, axis=1), np.cumsum(squares, axis=1))
    above, below = difference_crossings(moments, 1.0, alpha, beta)

    def first(crossed: np.ndarray) -> np.ndarray:
        return np.where(crossed.any(axis=1), crossed.argmax(axis=1), LOOKS)

    fail, passing = first(above), first(below)
    return float(np.mean(fail < passing)), float(np.mean(passing < fail))


# Absolute differences with mean 1 (the bound): skewed, half-normal, and mostly zero with rare
# large ones (a canary that differs only on a few inputs).
DIFFERENCES = {
    "exponential": lambda rng, shape: rng.exponential(1.0, shape),
    "half-normal": lambda rng, shape: np.abs(rng.normal(0.0, math.sqrt(math.pi / 2), shape)),
    "rare-and-large": lambda rng, shape: (rng.random(shape) < 0.05) * 20.0,
}


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_a_difference_at_the_bound_fails_at_most_alpha_and_passes_at_most_beta(name):
    failed, passed = _difference_outcomes(91, DIFFERENCES[name], alpha=0.05, beta=0.05)
    assert failed <= 0.05 + _tolerance(0.05)
    assert passed <= 0.05 + _tolerance(0.05)


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_a_difference_half_or_twice_the_bound_is_decided_within_the_horizon(name):
    def scaled(factor: float) -> Any:
        return lambda rng, shape: DIFFERENCES[name](rng, shape) * factor

    assert _difference_outcomes(92, scaled(0.5), alpha=0.01, beta=0.01)[1] > 0.99
    assert _difference_outcomes(93, scaled(2.0), alpha=0.01, beta=0.01)[0] > 0.99


# The step in the state machine


def test_the_shadow_step_starts_at_weight_0_and_runs_no_label_check():
    spec = shadowed()
    start = decide(spec, RolloutStatus(), observe(timedelta(), arm(), arm()), START)
    assert start.weights == Weights(stable=100, canary=0)
    assert "step 1 of 3 (shadow, canary answers compared)" in start.message
    checks, _ = step_checks(spec.spec, 0)
    assert [metric for metric, _ in checks] == ["agreement", "latency", "error-rate"]
    assert [metric for metric, _ in step_checks(spec.spec, 1)[0]] == [
        "accuracy",
        "latency",
        "error-rate",
    ]


def test_alpha_is_shared_by_every_test_of_the_rollout():
    spec = shadowed(accuracy=None).spec  # a shadow step of 3 checks, two weighted ones of 2
    _, budget = step_checks(spec, 0)
    assert budget.alpha == pytest.approx(0.01 / (3 + 2 * 2))
    assert step_checks(spec, 2)[1] == budget


def _canary(agreed: float, disagreed: float, **more: Any) -> ArmCounters:
    return arm(0, requests=agreed + disagreed).model_copy(
        update={"shadow_agreed": agreed, "shadow_disagreed": disagreed, **more}
    )


def test_a_canary_that_agrees_advances_to_the_first_weighted_step():
    spec = shadowed()
    status = decide(spec, RolloutStatus(), observe(timedelta(), _canary(0, 0), arm()), START)
    decision = tick(spec, status.status, _canary(5000, 0), GOOD_STABLE)
    assert decision.action is Action.ADVANCE
    assert decision.weights == Weights(stable=90, canary=10)
    assert "advanced to step 2 of 3 (10% canary)" in decision.message
    assert {r.metric: r.verdict for r in decision.reasons} == {
        "agreement": Verdict.PASS,
        "latency": Verdict.PASS,
        "error-rate": Verdict.PASS,
    }


def test_a_canary_that_disagrees_is_rolled_back_with_the_agreement_figures():
    spec = shadowed()
    pairs = [f"{k}\u2192{(k + 1) % 10}" for k in range(10)]  # every label shifted by one
    seen = _canary(0, 0, shadow_flips=dict.fromkeys(pairs, 0.0))
    status = decide(spec, RolloutStatus(), observe(timedelta(), seen, arm()), START)
    flips = {pair: 50.0 + index for index, pair in enumerate(pairs)}
    decision = tick(spec, status.status, _canary(0, 545, shadow_flips=flips), GOOD_STABLE)
    assert decision.action is Action.ROLLBACK
    assert decision.status.phase is Phase.ROLLED_BACK
    assert decision.weights == Weights(stable=100, canary=0)
    assert decision.message.startswith(
        "rolled back at step 1 of 3 (shadow, canary answers compared): agreement: canary agreed "
        "with stable on 0.00% of 545 rows: significantly below the bound; most flips "
        "(stable\u2192canary): 9\u21920 x59, 8\u21929 x58, 7\u21928 x57"
    )


def test_an_inconclusive_shadow_step_rolls_back_at_max_duration():
    spec = shadowed(maxDuration="2m")
    status = decide(spec, RolloutStatus(), observe(timedelta(), _canary(0, 0), arm()), START)
    decision = tick(spec, status.status, _canary(9, 1), GOOD_STABLE, at=timedelta(minutes=3))
    assert decision.action is Action.ROLLBACK
    assert "agreement" in decision.message


# When copies flow


def test_copies_flow_during_the_shadow_step_of_an_active_rollout_only():
    rollout = shadowed()
    backends = {"v1": "http://127.0.0.1:1", "v2": "http://127.0.0.1:2"}
    start = decide(rollout, RolloutStatus(), observe(timedelta(), arm(), arm()), START).status
    target = mirror_target(rollout, start, backends)
    assert target is not None
    assert (target.stable, target.canary, target.backend, target.fraction) == (
        "v1",
        "v2",
        "http://127.0.0.1:2",
        1.0,
    )
    assert mirror_target(rollout, start, {"v1": "http://127.0.0.1:1"}) is None  # not served
    paused = start.model_copy(update={"phase": Phase.PAUSED})
    assert mirror_target(rollout, paused, backends) == target
    for later in (
        start.model_copy(update={"step_index": 1}),
        start.model_copy(update={"phase": Phase.ROLLED_BACK}),
        start.model_copy(update={"canary_version": "v9"}),
        RolloutStatus(),
    ):
        assert mirror_target(rollout, later, backends) is None


def test_the_snapshot_sums_up_the_comparison():
    snapshot = shadow_snapshot(
        compared(90, 10, shadow_lost=2, shadow_flips={"1\u21927": 6.0, "3\u21928": 4.0})
    )
    assert snapshot is not None
    assert (snapshot.compared, snapshot.agreement, snapshot.lost) == (100, 0.9, 2)
    assert snapshot.top_flips == {"1\u21927": 6.0, "3\u21928": 4.0}
    assert shadow_snapshot(differences([1.0, 3.0])).mean_difference == 2.0  # type: ignore[union-attr]
    assert shadow_snapshot(ArmCounters()) is None


# The run loop


def shadow_stream(ticks: int, disagreeing: float) -> list[tuple[ArmCounters, ArmCounters]]:
    """Stable serves everything; the canary answers as many copies, compared as they come."""
    script = []
    for t in range(1, ticks + 1):
        canary = stream_arm(t, 3000, 0.97)
        rows = canary.requests or 0.0
        script.append(
            (
                stream_arm(t, 3000, 0.97),
                canary.model_copy(
                    update={
                        "shadow_agreed": rows * (1 - disagreeing),
                        "shadow_disagreed": rows * disagreeing,
                    }
                ),
            )
        )
    return script


def _controller(script: list[tuple[ArmCounters, ArmCounters]], mirror: MemoryMirror) -> Controller:
    clock = Clock()
    return Controller(
        rollout=shadowed(interval="10s", minSamples=100, maxDuration="2m"),
        router=MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),))),
        metrics=ScriptedProvider(script),
        store=MemoryStatusStore(),
        workloads=FakeWorkloads(),
        drain=timedelta(0),
        clock=clock,
        sleep=clock.sleep,
        mirror=mirror,
    )


def test_the_controller_mirrors_during_the_shadow_step_only_then_weighs_in_the_canary():
    mirror = MemoryMirror()
    controller = _controller(shadow_stream(60, 0.0), mirror)
    final = controller.run()
    assert final.phase is Phase.SUCCEEDED
    router = controller.router
    assert isinstance(router, MemoryRouter)
    assert [table.weights for table in router.history][:2] == [
        {"v1": 100, "v2": 0},
        {"v1": 90, "v2": 10},
    ]
    [(_, started), (_, stopped)] = mirror.history
    assert started is not None
    assert (started.canary, started.backend) == ("v2", "http://127.0.0.1:12000")
    assert stopped is None


def test_a_rollback_in_the_shadow_step_stops_the_copies_and_never_routed_a_client():
    mirror = MemoryMirror()
    controller = _controller(shadow_stream(60, 0.6), mirror)
    final = controller.run()
    assert final.phase is Phase.ROLLED_BACK
    assert "agreement" in final.message
    router = controller.router
    assert isinstance(router, MemoryRouter)
    assert max(table.weights.get("v2", 0) for table in router.history) == 0
    assert [target is None for _, target in mirror.history] == [False, True]


def test_a_mirror_that_cannot_be_set_is_reported_and_the_step_holds():
    mirror = MemoryMirror()
    mirror.available = False
    controller = _controller(shadow_stream(3, 0.0), mirror)
    reports = [controller.tick() for _ in range(2)]
    assert all("mirror unavailable" in (report.problem or "") for report in reports)
    assert reports[-1].status.weights == Weights(stable=100, canary=0)
