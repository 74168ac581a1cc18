"""The decision engine: one pure function from (spec, status, observation, now) to a Decision.

Why pure, after Argo Rollouts' analysis/analysis.go: every rule is a small ``assess_*`` function
over stored counts, tested from a table; any decision can be replayed from a persisted status;
and the controller's I/O (Prometheus, router, status store) lives in adapters that import this
module, never the reverse.

The rules, first match wins:

1. Paused: hold with the weights as they are; the step clock stops.
2. Pending, or the stable or canary version differs from the one the status is about: start again
   at the first step with fresh counters; what was learnt about another version proves nothing.
3. Finished (Succeeded, RolledBack, Failed): hold.
4. Otherwise assess each enabled check on the step's counts:
   - any check failing is a significant regression: roll back at once, however early;
   - every check passing: advance, or promote after the last step;
   - anything else (too few samples, no data, a query that failed this tick, a stale
     observation, evidence not yet conclusive): hold, and roll back once the step has lasted
     maxDuration: a canary that cannot be shown safe in time is not promoted.

Why a failure may come early and a pass may not come from a failed query: each test's rollback
boundary keeps its error rate at every sample size, so a regression visible early is as
trustworthy as one seen late; but a pass is only given on data read this tick, so a Prometheus
outage can delay a rollout and never promote one.

A person's command (`apply_command`: pause, resume, abort, promote) takes the place of the
analysis for one tick; abort and promote act whatever the metrics say.

The error budget: ``alpha`` is split evenly over every rollback test that can fire (each enabled
check at each step, a Bonferroni bound), so a canary no worse than stable is rolled back with
probability at most alpha over the whole rollout. ``beta`` is not split: promotion needs every
check to pass at the last step, so a canary that regressed on any one check is promoted with
probability at most beta.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import NamedTuple

from pydantic.alias_generators import to_camel

from mlcanary.rollout.observations import (
    ArmCounters,
    CamelModel,
    Observation,
    exceedance,
    histogram_quantile,
)
from mlcanary.rollout.sequential import (
    binomial_log_ratio,
    difference_sprt,
    gaussian_mixture_radius,
)
from mlcanary.rollout.spec import (
    AccuracyCheck,
    AnalysisSpec,
    ErrorRateCheck,
    LatencyCheck,
    ModelRollout,
    format_duration,
)
from mlcanary.rollout.status import (
    FINISHED,
    HISTORY_LIMIT,
    Action,
    Condition,
    DecisionRecord,
    Phase,
    Reason,
    RolloutStatus,
    StepCounters,
    Verdict,
    Weights,
)

__all__ = [
    "Decision",
    "ErrorBudget",
    "apply_command",
    "assess_accuracy",
    "assess_error_rate",
    "assess_latency",
    "assess_latency_max",
    "decide",
    "error_budget",
]

_ANALYSIS = "analysis"
_CONDITION = "Promoted"
_COMMANDS = frozenset({"pause", "resume", "abort", "promote"})


class Decision(CamelModel):
    """What to do now, why, and the status to persist (written once, after the router is set)."""

    action: Action
    weights: Weights
    reasons: tuple[Reason, ...]
    message: str
    status: RolloutStatus


@dataclass(frozen=True)
class ErrorBudget:
    """Error rates for one check's tests at one step, and the samples each test needs first."""

    alpha: float  # this test's share of the rollout's false-rollback probability
    beta: float  # false-pass probability of a canary at the regression the check guards against
    min_samples: int


def error_budget(analysis: AnalysisSpec, steps: int) -> ErrorBudget:
    """Each check at each step gets an equal share of alpha."""
    tests = steps * len(_checks(analysis))
    return ErrorBudget(analysis.alpha / tests, analysis.beta, analysis.min_samples)


class _Seen(NamedTuple):
    canary: float | None = None
    stable: float | None = None
    threshold: float | None = None


def _reason(metric: str, verdict: Verdict, rule: str, message: str, seen: _Seen) -> Reason:
    return Reason(
        metric=metric,
        verdict=verdict,
        canary=seen.canary,
        stable=seen.stable,
        threshold=seen.threshold,
        rule=rule,
        message=message,
    )


def _percentile(quantile: float) -> str:
    return f"p{quantile * 100:g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def assess_accuracy(
    check: AccuracyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """Wald's SPRT of canary minus stable accuracy: 0 (no regression) against -maxDrop."""
    fail_at, pass_at = math.log(1 / budget.alpha), math.log(budget.beta)
    rule = (
        f"SPRT of canary minus stable accuracy, 0 against -{check.max_drop:g}: roll back at a "
        f"log-likelihood ratio >= {fail_at:.2f}, pass at <= {pass_at:.2f}"
    )
    counts = [
        (arm.feedback_correct, arm.feedback_incorrect)
        for arm in (canary, stable)
        if arm.feedback_correct is not None and arm.feedback_incorrect is not None
    ]
    if len(counts) < 2:
        message = "no feedback counts yet for both versions"
        return _reason("accuracy", Verdict.INCONCLUSIVE, rule, message, _Seen())
    (kc, wrong_c), (ks, wrong_s) = counts
    nc, ns = kc + wrong_c, ks + wrong_s
    seen = _Seen(
        kc / nc if nc else None,
        ks / ns if ns else None,
        ks / ns - check.max_drop if ns else None,
    )
    if min(nc, ns) < budget.min_samples:
        message = (
            f"{nc:.0f} labeled canary and {ns:.0f} stable predictions: "
            f"{budget.min_samples} of each needed"
        )
        return _reason("accuracy", Verdict.INCONCLUSIVE, rule, message, seen)
    ratios = difference_sprt(kc, nc, ks, ns, check.max_drop)
    rollback, accept = float(ratios.rollback), float(ratios.accept)
    counted = f"canary {kc / nc:.2%} against stable {ks / ns:.2%} on {nc:.0f}/{ns:.0f} labels"
    if rollback >= fail_at:
        verdict = Verdict.FAIL
        message = f"{counted}: significantly lower (ratio {rollback:.2f} >= {fail_at:.2f})"
    elif accept <= pass_at:
        verdict = Verdict.PASS
        message = f"{counted}: no drop of {check.max_drop:g} or more (ratio {accept:.2f})"
    else:
        verdict = Verdict.INCONCLUSIVE
        message = f"{counted}: not conclusive yet (ratios {rollback:.2f} and {accept:.2f})"
    return _reason("accuracy", verdict, rule, message, seen)


def assess_latency(
    check: LatencyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's latency quantile against maxRatio times stable's, as a proportion.

    With L = maxRatio times stable's quantile q, the canary is within bound exactly when at most
    1 - q of its requests take longer than L: counting requests above a threshold turns a ratio of
    quantiles into a proportion, which the normal-mixture confidence sequence handles. Its
    variance is the one at the bound, q(1-q)(1/n_canary + 1/n_stable); the second term is the
    error of L itself, estimated from stable's histogram (Bahadur's representation of a sample
    quantile, exact when a slower canary is a stretched stable, every request slowed alike).

    Unlike accuracy, latency gets a single boundary at maxRatio rather than an indifference zone
    below it: requests are plentiful, so the test can afford to resolve slowdowns close to the
    bound, and a canary a few percent slower than stable, which is common and harmless, is never
    the one it is built to catch.
    """
    q, tail = check.quantile, 1 - check.quantile
    name = _percentile(q)
    rule = (
        f"the canary's {name} must stay under {check.max_ratio:g} x stable's: "
        f"at most {tail:.1%} of canary requests above that bound"
    )
    hc, hs = canary.latency_buckets, stable.latency_buckets
    if hc is None or hs is None:
        message = "no latency histogram yet for both versions"
        return _reason("latency", Verdict.INCONCLUSIVE, rule, message, _Seen())
    nc, ns = hc[math.inf], hs[math.inf]
    canary_q = histogram_quantile(q, hc) if nc else None
    stable_q = histogram_quantile(q, hs) if ns else None
    limit = stable_q * check.max_ratio if stable_q is not None else None
    seen = _Seen(canary_q, stable_q, limit)
    if canary_q is None or limit is None or min(nc, ns) < budget.min_samples:
        message = (
            f"{nc:.0f} canary and {ns:.0f} stable requests timed: "
            f"{budget.min_samples} of each needed"
        )
        return _reason("latency", Verdict.INCONCLUSIVE, rule, message, seen)
    if math.isinf(limit):
        message = f"stable's {name} lies above the histogram's largest finite bucket"
        return _reason("latency", Verdict.INCONCLUSIVE, rule, message, seen)
    variance = q * tail * (1 / nc + 1 / ns)
    above = exceedance(hc, limit)
    counted = (
        f"{name} canary {_ms(canary_q)} against stable {_ms(limit / check.max_ratio)}: "
        f"{above.high / nc:.1%} of canary requests above {_ms(limit)}"
    )
    if above.low / nc - tail > float(gaussian_mixture_radius(variance, budget.alpha, tail)):
        verdict = Verdict.FAIL
    elif above.high / nc - tail < -float(gaussian_mixture_radius(variance, budget.beta, tail)):
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return _reason("latency", verdict, rule, f"{counted}: {_OUTCOMES[verdict]}", seen)


_OUTCOMES = {
    Verdict.FAIL: "significantly over the limit",
    Verdict.PASS: "under the limit",
    Verdict.INCONCLUSIVE: "not conclusive yet",
}


def _against_limit(
    low: float, high: float, trials: float, limit: float, budget: ErrorBudget
) -> Verdict:
    """A proportion against an absolute limit with the beta-binomial mixture; `low` and `high`
    are the counts to use for failing and for passing (see `Exceedance`)."""
    if low > limit * trials and binomial_log_ratio(low, trials, limit, limit) >= math.log(
        1 / budget.alpha
    ):
        return Verdict.FAIL
    if high < limit * trials and binomial_log_ratio(high, trials, limit, limit) >= math.log(
        1 / budget.beta
    ):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def assess_latency_max(
    check: LatencyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's quantile against the absolute bound maxMs, through its exceedance count.

    A threshold beyond the histogram's last finite bucket counts the whole +Inf bucket as above
    it for passing and nothing for failing: the histogram cannot tell, and doubt must not pass.
    """
    q, tail = check.quantile, 1 - check.quantile
    name = _percentile(q)
    if check.max_ms is None:
        raise ValueError("latency.maxMs is not set: there is no absolute bound to assess")
    limit = check.max_ms / 1000
    rule = f"the canary's {name} must stay under {_ms(limit)}: at most {tail:.1%} of requests above"
    hc, hs = canary.latency_buckets, stable.latency_buckets
    stable_q = histogram_quantile(q, hs) if hs and hs[math.inf] else None
    timed = hc[math.inf] if hc else 0.0
    if hc is None or timed < budget.min_samples:
        message = f"{timed:.0f} canary requests timed: {budget.min_samples} needed"
        return _reason(
            "latency-max", Verdict.INCONCLUSIVE, rule, message, _Seen(None, stable_q, limit)
        )
    canary_q = histogram_quantile(q, hc)
    above = exceedance(hc, limit)
    verdict = _against_limit(above.low, above.high, timed, tail, budget)
    message = (
        f"canary {name} {_ms(canary_q)}, {above.high / timed:.1%} of {timed:.0f} requests above "
        f"{_ms(limit)}: {_OUTCOMES[verdict]}"
    )
    return _reason("latency-max", verdict, rule, message, _Seen(canary_q, stable_q, limit))


def assess_error_rate(
    check: ErrorRateCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's 5xx fraction against the absolute limit; 4xx leave the denominator too.

    Stable's rate is reported for comparison only: the limit is an objective of the service,
    and a stable version breaking it is no excuse for a canary to.
    """
    rule = f"5xx responses must stay under {check.max:.2%} of the canary's requests (4xx excluded)"

    def served(arm: ArmCounters) -> tuple[float, float] | None:
        if arm.server_errors is None or arm.requests is None or arm.client_errors is None:
            return None
        return arm.server_errors, max(arm.requests - arm.client_errors, arm.server_errors)

    counted, reference = served(canary), served(stable)
    stable_rate = reference[0] / reference[1] if reference and reference[1] else None
    if counted is None or counted[1] < budget.min_samples:
        total = counted[1] if counted else 0.0
        message = f"{total:.0f} canary requests counted: {budget.min_samples} needed"
        return _reason(
            "error-rate", Verdict.INCONCLUSIVE, rule, message, _Seen(None, stable_rate, check.max)
        )
    errors, total = counted
    verdict = _against_limit(errors, errors, total, check.max, budget)
    rate = f"{errors / total:.2%}"
    message = f"{errors:.0f} 5xx in {total:.0f} canary requests ({rate}): {_OUTCOMES[verdict]}"
    return _reason(
        "error-rate", verdict, rule, message, _Seen(errors / total, stable_rate, check.max)
    )


Assessment = Callable[[ArmCounters, ArmCounters, ErrorBudget], Reason]


def _checks(analysis: AnalysisSpec) -> list[tuple[str, Assessment]]:
    """The enabled checks, by metric name, each bound to its settings."""
    checks: list[tuple[str, Assessment]] = []
    if analysis.accuracy is not None:
        checks.append(("accuracy", partial(assess_accuracy, analysis.accuracy)))
    if analysis.latency is not None:
        checks.append(("latency", partial(assess_latency, analysis.latency)))
        if analysis.latency.max_ms is not None:
            checks.append(("latency-max", partial(assess_latency_max, analysis.latency)))
    if analysis.error_rate is not None:
        checks.append(("error-rate", partial(assess_error_rate, analysis.error_rate)))
    return checks


_INPUTS = {
    "accuracy": ("feedback_correct", "feedback_incorrect"),
    "latency": ("latency_buckets",),
    "latency-max": ("latency_buckets",),
    "error-rate": ("requests", "server_errors", "client_errors"),
}
_COMPARED = frozenset({"accuracy", "latency"})  # the checks that read stable's counts


def _failed_queries(observation: Observation, metric: str, stable_serves: bool) -> list[str]:
    """The inputs of `metric` missing from this tick's observation, as camelCase paths."""
    arms = {"canary": observation.canary}
    if stable_serves and metric in _COMPARED:
        arms["stable"] = observation.stable
    return [
        f"{arm}.{to_camel(field)}"
        for arm, counters in arms.items()
        for field in _INPUTS[metric]
        if getattr(counters, field) is None
    ]


def _promoted(
    conditions: Sequence[Condition], phase: Phase, message: str, now: datetime
) -> tuple[Condition, ...]:
    """The "Promoted" condition, as Flagger keeps it: Unknown until the rollout ends."""
    value = {Phase.SUCCEEDED: "True", Phase.ROLLED_BACK: "False", Phase.FAILED: "False"}.get(
        phase, "Unknown"
    )
    previous = next((c for c in conditions if c.type == _CONDITION), None)
    since = previous.last_transition_time if previous and previous.status == value else now
    condition = Condition.model_validate(
        {
            "type": _CONDITION,
            "status": value,
            "reason": phase.value,
            "message": message,
            "last_transition_time": since,
        }
    )
    return (*(c for c in conditions if c.type != _CONDITION), condition)


def _unless_missing(reason: Reason, missing: list[str]) -> Reason:
    """A check whose query failed this tick cannot pass: its counts are not up to date."""
    if not missing:
        return reason
    message = f"query failed this tick ({', '.join(missing)}); {reason.message}"
    return reason.model_copy(update={"verdict": Verdict.INCONCLUSIVE, "message": message})


@dataclass(frozen=True)
class _Tick:
    """One decision's inputs, handed around whole like Argo Rollouts' per-reconcile context."""

    spec: ModelRollout
    status: RolloutStatus
    observation: Observation
    now: datetime

    def step_name(self, index: int) -> str:
        steps = self.spec.spec.steps
        return f"step {index + 1} of {len(steps)} ({steps[index]}% canary)"

    def stale(self) -> bool:
        observed = self.status.observed_at
        return observed is not None and self.observation.timestamp <= observed

    def conclude(
        self, action: Action, reasons: Sequence[Reason], message: str, changes: dict[str, object]
    ) -> Decision:
        """The decision, with the status to persist: `changes` applied and the decision logged."""
        updated = self.status.model_copy(update=changes)
        record = DecisionRecord(
            at=self.now,
            step_index=updated.step_index,
            action=action,
            weights=updated.weights,
            message=message,
            reasons=tuple(reasons),
        )
        final = updated.model_copy(
            update={
                "spec_hash": self.spec.spec_hash(),
                "last_analysis_at": self.now,
                "history": (*self.status.history, record)[-HISTORY_LIMIT:],
                "conditions": _promoted(self.status.conditions, updated.phase, message, self.now),
                "message": message,
            }
        )
        return Decision(
            action=action,
            weights=final.weights,
            reasons=tuple(reasons),
            message=message,
            status=final,
        )

    def start(self) -> Decision:
        stable, canary = self.spec.spec.stable.version, self.spec.spec.canary.version
        message = f"analysis of {canary} against {stable} started at {self.step_name(0)}"
        if self.status.canary_version is not None:
            message += (
                f"; the analysis of {self.status.canary_version} against "
                f"{self.status.stable_version} was dropped"
            )
        rule = "a pending rollout or a new version starts at the first step with fresh counters"
        changes: dict[str, object] = {
            "phase": Phase.PROGRESSING,
            "stable_version": stable,
            "canary_version": canary,
            "step_index": 0,
            "weights": Weights.canary_percent(self.spec.spec.steps[0]),
            "step_started_at": self.now,
            "observed_at": self.observation.timestamp,
            "counters": StepCounters.begin(self.observation),
            "reference": None,
        }
        reason = _reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())
        return self.conclude(Action.HOLD, [reason], message, changes)

    def paused(self) -> Decision:
        status = self.status
        changes: dict[str, object] = {}
        if not self.stale():
            changes["counters"] = status.counters.update(self.observation, count=False)
            changes["observed_at"] = self.observation.timestamp
        if status.step_started_at is not None and status.last_analysis_at is not None:
            changes["step_started_at"] = status.step_started_at + (
                self.now - status.last_analysis_at
            )
        message = "paused: weights kept, step clock stopped, traffic not counted"
        rule = "a paused rollout holds until it is resumed"
        reason = _reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())
        return self.conclude(Action.HOLD, [reason], message, changes)

    def finished(self) -> Decision:
        message = f"rollout finished ({self.status.phase.value}): nothing to decide"
        rule = "a finished rollout holds until a new canary version is set"
        reason = _reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())
        return self.conclude(Action.HOLD, [reason], message, {})

    def analyse(self) -> Decision:
        analysis, status = self.spec.spec.analysis, self.status
        step = self.step_name(status.step_index)
        changes: dict[str, object] = {}
        if self.stale():
            counters = status.counters
            last = status.observed_at.isoformat() if status.observed_at else "the last one"
            message = (
                f"observation of {self.observation.timestamp.isoformat()} is not newer than {last}"
            )
            rule = "only an observation newer than the last one is analysed"
            reasons = [_reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())]
        else:
            stable_serves = status.weights.stable > 0
            checks = _checks(analysis)
            missing = {
                metric: _failed_queries(self.observation, metric, stable_serves)
                for metric, _ in checks
            }
            counters = status.counters.update(self.observation, failed_query=any(missing.values()))
            stable = counters.stable.total if stable_serves else status.reference or ArmCounters()
            budget = error_budget(analysis, len(self.spec.spec.steps))
            reasons = [
                _unless_missing(assess(counters.canary.total, stable, budget), missing[metric])
                for metric, assess in checks
            ]
            changes["observed_at"] = self.observation.timestamp
        changes["counters"] = counters
        failed = [reason for reason in reasons if reason.verdict is Verdict.FAIL]
        waiting = [reason.metric for reason in reasons if reason.verdict is Verdict.INCONCLUSIVE]
        elapsed = self.now - (status.step_started_at or self.now)
        if failed:
            details = "; ".join(f"{reason.metric}: {reason.message}" for reason in failed)
            return self.rollback(reasons, f"rolled back at {step}: {details}", changes)
        if not waiting:
            return self.advance(reasons, counters, changes)
        limit = format_duration(analysis.max_duration)
        if elapsed >= analysis.max_duration:
            message = (
                f"rolled back at {step}: still inconclusive after {format_duration(elapsed)} "
                f"(maxDuration {limit}): {', '.join(waiting)}"
            )
            rule = "a step still inconclusive at maxDuration rolls back"
            deadline = _reason(_ANALYSIS, Verdict.FAIL, rule, message, _Seen())
            return self.rollback([*reasons, deadline], message, changes)
        message = (
            f"holding at {step} for {format_duration(elapsed)} of {limit}: "
            f"waiting on {', '.join(waiting)}"
        )
        return self.conclude(Action.HOLD, reasons, message, changes)

    def command(self, command: str) -> Decision:
        """A person's command: it overrides the analysis, so it is logged as the only reason."""
        if command not in _COMMANDS:
            raise ValueError(f"unknown command {command!r}; expected one of {sorted(_COMMANDS)}")
        phase = self.status.phase
        active = phase in {Phase.PROGRESSING, Phase.PAUSED}
        rule = f"a person's {command!r} command"
        if command == "resume" and phase is Phase.PAUSED:
            return replace(
                self, status=self.status.model_copy(update={"phase": Phase.PROGRESSING})
            ).analyse()
        if command == "pause" and phase is Phase.PROGRESSING:
            message = "paused by a person: weights kept, step clock stopped, traffic not counted"
            reason = _reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())
            return self.conclude(Action.HOLD, [reason], message, {"phase": Phase.PAUSED})
        if command == "abort" and active:
            message = f"rolled back by a person at {self.step_name(self.status.step_index)}"
            reason = _reason(_ANALYSIS, Verdict.FAIL, rule, message, _Seen())
            return self.rollback([reason], message, {})
        if command == "promote" and active:
            message = f"promoted by a person at {self.step_name(self.status.step_index)}"
            reason = _reason(_ANALYSIS, Verdict.PASS, rule, message, _Seen())
            changes: dict[str, object] = {
                "phase": Phase.SUCCEEDED,
                "weights": Weights.canary_percent(100),
            }
            return self.conclude(Action.PROMOTE, [reason], message, changes)
        message = f"{command!r} ignored: the rollout is {phase.value}"
        reason = _reason(_ANALYSIS, Verdict.INCONCLUSIVE, rule, message, _Seen())
        return self.conclude(Action.HOLD, [reason], message, {})

    def rollback(
        self, reasons: Sequence[Reason], message: str, changes: dict[str, object]
    ) -> Decision:
        changes |= {"phase": Phase.ROLLED_BACK, "weights": Weights.canary_percent(0)}
        return self.conclude(Action.ROLLBACK, reasons, message, changes)

    def advance(
        self, reasons: Sequence[Reason], counters: StepCounters, changes: dict[str, object]
    ) -> Decision:
        steps, index = self.spec.spec.steps, self.status.step_index
        passed = self.step_name(index)
        if index + 1 == len(steps):
            changes |= {"phase": Phase.SUCCEEDED, "weights": Weights.canary_percent(100)}
            message = f"promoted: every check passed at {passed}"
            return self.conclude(Action.PROMOTE, reasons, message, changes)
        stable_served = self.status.weights.stable > 0
        changes |= {
            "step_index": index + 1,
            "weights": Weights.canary_percent(steps[index + 1]),
            "step_started_at": self.now,
            "counters": StepCounters.begin(self.observation),
            "reference": counters.stable.total if stable_served else self.status.reference,
        }
        message = f"advanced to {self.step_name(index + 1)}: every check passed at {passed}"
        return self.conclude(Action.ADVANCE, reasons, message, changes)


def apply_command(
    spec: ModelRollout,
    status: RolloutStatus,
    command: str,
    observation: Observation,
    now: datetime,
) -> Decision:
    """Carry out a person's command ("pause", "resume", "abort" or "promote") instead of deciding.

    Abort rolls back and promote sends all traffic to the canary whatever the analysis says: a
    person may know what the metrics cannot. Resume analyses the tick at once. A command that
    does not apply to the rollout's phase is recorded and changes nothing, and one that finds
    the versions changed gives way to the restart that `decide` makes.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    versions = (spec.spec.stable.version, spec.spec.canary.version)
    if (status.stable_version, status.canary_version) != versions:
        return decide(spec, status, observation, now)
    return _Tick(spec, status, observation, now).command(command)


def decide(
    spec: ModelRollout, status: RolloutStatus, observation: Observation, now: datetime
) -> Decision:
    """Decide this tick from the spec, the persisted status and the metrics read just now.

    `now` must be timezone-aware; it dates the decision and measures the step against
    maxDuration, while `observation.timestamp` only orders observations.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tick = _Tick(spec, status, observation, now)
    if status.phase is Phase.PAUSED:
        return tick.paused()
    versions = (spec.spec.stable.version, spec.spec.canary.version)
    if status.phase is Phase.PENDING or (status.stable_version, status.canary_version) != versions:
        return tick.start()
    if status.phase in FINISHED:
        return tick.finished()
    return tick.analyse()
