"""The state machine: one pure function from (rollout, status, observation, now) to a Decision.

Why pure, after Argo Rollouts' analysis/analysis.go: every rule is tested from a table; any
decision can be replayed from a persisted status; and the controller's I/O (Prometheus, router,
status store) lives in adapters that import this module, never the reverse. The statistics each
step is judged by are in `checks`; this module only combines their verdicts.

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
analysis for one tick; abort and promote act whatever the metrics say. The request carried out is
recorded in the status it decides (``lastCommand``), so a store that keeps requests on the
rollout object tells a new one from one already done.

Every decision also sets the status's conditions (`conditions`), so that whichever store keeps
it, the local file or the cluster's status subresource, persists the same status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from mlcanary.rollout.checks import (
    Seen,
    failed_queries,
    reason_for,
    unless_missing,
)
from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.conditions import conditions_for
from mlcanary.rollout.forecast import Forecast, growth_needed, sample_count
from mlcanary.rollout.gates import Confirm, GateOutcome
from mlcanary.rollout.metric_checks import assess_metric
from mlcanary.rollout.metric_checks import stable_value as metric_stable_value
from mlcanary.rollout.observations import ArmCounters, CamelModel, Observation
from mlcanary.rollout.shadow import LABELED_CHECKS, step_checks
from mlcanary.rollout.spec import Gate, ModelRollout, format_duration
from mlcanary.rollout.status import (
    FINISHED,
    HISTORY_LIMIT,
    Action,
    DecisionRecord,
    MetricTally,
    Phase,
    Reason,
    RolloutStatus,
    StepCounters,
    Verdict,
    Weights,
)

__all__ = ["Decision", "apply_command", "decide", "refuse"]

_ANALYSIS = "analysis"


class Decision(CamelModel):
    """What to do now, why, and the status to persist (written once, after the router is set)."""

    action: Action
    weights: Weights
    reasons: tuple[Reason, ...]
    message: str
    status: RolloutStatus


def _about_the_rollout(verdict: Verdict, rule: str, message: str) -> Reason:
    return reason_for(_ANALYSIS, verdict, rule, message, Seen())


@dataclass(frozen=True)
class _Tick:
    """One decision's inputs, handed around whole like Argo Rollouts' per-reconcile context."""

    rollout: ModelRollout
    status: RolloutStatus
    observation: Observation
    now: datetime
    request: CommandRequest | None = None
    confirm: Confirm | None = None

    def step_name(self, index: int) -> str:
        spec = self.rollout.spec
        return f"step {index + 1} of {len(spec.steps)} ({spec.step_label(index)})"

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
                "spec_hash": self.rollout.spec_hash(),
                "last_analysis_at": self.now,
                "history": (*self.status.history, record)[-HISTORY_LIMIT:],
                "conditions": conditions_for(
                    self.status.conditions, updated.phase, message, self.now
                ),
                "message": message,
                **({"last_command": self.request.key} if self.request is not None else {}),
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
        spec = self.rollout.spec
        stable, canary = spec.stable.version, spec.canary.version
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
            "weights": Weights.canary_percent(spec.canary_percent(0)),
            "step_started_at": self.now,
            "observed_at": self.observation.timestamp,
            "counters": StepCounters.begin(self.observation),
            "reference": None,
            "retire_at": None,
        }
        reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
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
        reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
        return self.conclude(Action.HOLD, [reason], message, changes)

    def finished(self) -> Decision:
        message = f"rollout finished ({self.status.phase.value}): nothing to decide"
        rule = "a finished rollout holds until a new canary version is set"
        reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
        return self.conclude(Action.HOLD, [reason], message, {})

    def outage(self) -> tuple[datetime, str] | None:
        """Since when the metrics have been unavailable, and the words that say so and why;
        None when this tick could read them."""
        cause = self.observation.unavailable
        if cause is None:
            return None
        since = self.status.metrics_unavailable_since or self.now
        return since, (
            f"metrics unavailable since {since.astimezone(UTC):%Y-%m-%d %H:%M:%SZ} "
            f"(for {format_duration(self.now - since)}): {cause}"
        )

    def analyse(self) -> Decision:
        analysis, status = self.rollout.spec.analysis, self.status
        baking = status.phase is Phase.BAKING
        step = "the bake" if baking else self.step_name(status.step_index)
        changes: dict[str, object] = {}
        outage: tuple[datetime, str] | None = None
        if self.stale():
            counters = status.counters
            last = status.observed_at.isoformat() if status.observed_at else "the last one"
            message = (
                f"observation of {self.observation.timestamp.isoformat()} is not newer than {last}"
            )
            rule = "only an observation newer than the last one is analysed"
            reasons = [_about_the_rollout(Verdict.INCONCLUSIVE, rule, message)]
        else:
            counters = status.counters.update(self.observation)
            outage = self.outage()
            changes["metrics_unavailable_since"] = outage[0] if outage else None
            reasons, counters = self.checks(counters)
            changes["observed_at"] = self.observation.timestamp
            changes["pending_labels"] = _pending_labels(status, counters)
        changes["counters"] = counters
        failed = [reason for reason in reasons if reason.verdict is Verdict.FAIL]
        waiting = [reason.metric for reason in reasons if reason.verdict is Verdict.INCONCLUSIVE]
        elapsed = self.now - (status.step_started_at or self.now)
        if failed:
            details = "; ".join(f"{reason.metric}: {reason.message}" for reason in failed)
            return self.rollback(
                reasons,
                f"rolled back during {step}: {details}"
                if baking
                else f"rolled back at {step}: {details}",
                changes,
            )
        if baking:
            return self.bake(reasons, elapsed, changes)
        if not waiting:
            return self.advance(reasons, counters, changes)
        limit = format_duration(analysis.max_duration)
        cause = f"{outage[1]}; " if outage else ""
        if elapsed >= analysis.max_duration:
            return self.deadline(reasons, f"{cause}{', '.join(waiting)}", elapsed, changes)
        message = (
            f"holding at {step} for {format_duration(elapsed)} of {limit}: "
            f"{cause}waiting on {', '.join(waiting)}"
            f"{_overrun(reasons, analysis.max_duration - elapsed)}"
        )
        return self.conclude(Action.HOLD, reasons, message, changes)

    def checks(self, counters: StepCounters) -> tuple[list[Reason], StepCounters]:
        """Every enabled check on the step's counts, with a forecast for each inconclusive one,
        and the counters with this tick's failed queries and metric tallies."""
        analysis, status = self.rollout.spec.analysis, self.status
        stable_serves = status.weights.stable > 0
        checks, budget = step_checks(self.rollout.spec, status.step_index)
        missing = {
            metric: failed_queries(self.observation, metric, stable_serves) for metric, _ in checks
        }
        stable = counters.stable.total if stable_serves else status.reference or ArmCounters()
        elapsed_s = (self.now - (status.step_started_at or self.now)).total_seconds()
        reasons = []
        for metric, assess in checks:
            reason = unless_missing(assess(counters.canary.total, stable, budget), missing[metric])
            reason = self.until_labels_are_due(metric, reason)
            if reason.verdict is Verdict.INCONCLUSIVE and not missing[metric]:
                unit, count = sample_count(metric, counters.canary.total)
                growth = (
                    growth_needed(
                        assess, counters.canary.total, stable, budget, stable_grows=stable_serves
                    )
                    if count and elapsed_s > 0
                    else None
                )
                forecast = (
                    Forecast(count * (growth - 1), unit, elapsed_s * (growth - 1))
                    if growth is not None and count
                    else None
                )
                reason = _with_forecast(reason, forecast, self.label_wait_s(metric))
            reasons.append(reason)
        tallies = {}
        for check in analysis.metrics:
            values = self.observation.metrics.get(check.name)
            reference = status.metric_reference.get(check.name)
            stable_value = metric_stable_value(values, stable_serves, reference)
            canary_value = values.canary if values is not None else None
            tally = counters.metrics.get(check.name, MetricTally())
            reason, tallies[check.name] = assess_metric(check, canary_value, stable_value, tally)
            if reason.verdict is Verdict.INCONCLUSIVE and tallies[check.name].passes:
                more = check.min_evaluations - tallies[check.name].passes
                forecast = Forecast(more, "evaluations", more * analysis.interval.total_seconds())
                reason = _with_forecast(reason, forecast, 0.0)
            reasons.append(reason)
        counted = counters.model_copy(
            update={
                "metrics": tallies,
                "failed_queries": counters.failed_queries + int(any(missing.values())),
            }
        )
        return reasons, counted

    def label_wait_s(self, metric: str) -> float:
        """How long the labels of a label-based check still need before it may conclude."""
        delay = self.rollout.spec.analysis.label_delay
        if delay is None or metric not in LABELED_CHECKS:
            return 0.0
        ran = self.now - (self.status.step_started_at or self.now)
        return max((delay - ran).total_seconds(), 0.0)

    def until_labels_are_due(self, metric: str, reason: Reason) -> Reason:
        """A label-based check concludes only once its step has run ``labelDelay``: before
        that, its counts hold the predictions whose labels came back fastest, and those may not
        be like the rest."""
        wait = self.label_wait_s(metric)
        if wait == 0 or reason.verdict is Verdict.INCONCLUSIVE:
            return reason
        delay = format_duration(self.rollout.spec.analysis.label_delay or timedelta())
        message = (
            f"labels take up to {delay} (labelDelay): judged once the step has run that long, "
            f"in {format_duration(timedelta(seconds=wait))}; so far {reason.message}"
        )
        return reason.model_copy(update={"verdict": Verdict.INCONCLUSIVE, "message": message})

    def deadline(
        self,
        reasons: Sequence[Reason],
        waiting: str,
        elapsed: timedelta,
        changes: dict[str, object],
    ) -> Decision:
        """A step still inconclusive at maxDuration: roll back, or pause for a person
        (``analysis.inconclusive``), as Argo Rollouts' Inconclusive does."""
        analysis = self.rollout.spec.analysis
        step = self.step_name(self.status.step_index)
        still = (
            f"still inconclusive after {format_duration(elapsed)} "
            f"(maxDuration {format_duration(analysis.max_duration)}): {waiting}"
        )
        if analysis.inconclusive == "pause":
            message = f"paused at {step}: {still}; resume for another maxDuration, promote or abort"
            rule = "a step still inconclusive at maxDuration pauses (inconclusive: pause)"
            reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
            changes |= {"phase": Phase.PAUSED}
            return self.conclude(Action.HOLD, [*reasons, reason], message, changes)
        message = f"rolled back at {step}: {still}"
        rule = "a step still inconclusive at maxDuration rolls back"
        deadline = _about_the_rollout(Verdict.FAIL, rule, message)
        return self.rollback([*reasons, deadline], message, changes)

    def bake(
        self, reasons: Sequence[Reason], elapsed: timedelta, changes: dict[str, object]
    ) -> Decision:
        """After promotion: hold at 100% until the bake has lasted, then succeed."""
        bake = self.rollout.spec.promotion.bake or timedelta()
        if elapsed >= bake:
            message = (
                f"succeeded: no regression in a {format_duration(bake)} bake at 100%; "
                f"{self.rollout.spec.stable.version} can go"
            )
            changes |= {"phase": Phase.SUCCEEDED}
            return self.conclude(Action.PROMOTE, reasons, message, changes)
        message = (
            f"baking at 100% for {format_duration(elapsed)} of {format_duration(bake)}: "
            f"{self.rollout.spec.stable.version} stays deployed at weight 0 until then"
        )
        return self.conclude(Action.HOLD, reasons, message, changes)

    def command(self, request: CommandRequest) -> Decision:
        """A person's command: it overrides the analysis, so it is logged as the only reason."""
        command, phase = request.command, self.status.phase
        if command is None:
            known = ", ".join(c.value for c in Command)
            message = f"command {request.word!r} ignored: not one of {known}"
            reason = _about_the_rollout(Verdict.INCONCLUSIVE, "a person's command", message)
            return self.conclude(Action.HOLD, [reason], message, {})
        active = phase in {Phase.PROGRESSING, Phase.PAUSED, Phase.BAKING}
        rule = f"a person's {command.value!r} command"
        if command is Command.RESUME and phase is Phase.PAUSED:
            resumed: dict[str, object] = {"phase": Phase.PROGRESSING}
            started = self.status.step_started_at
            if (
                started is not None
                and self.now - started >= self.rollout.spec.analysis.max_duration
            ):
                resumed["step_started_at"] = self.now  # paused at the deadline: another one
            return replace(self, status=self.status.model_copy(update=resumed)).analyse()
        if command is Command.PAUSE and phase is Phase.PROGRESSING:
            message = "paused by a person: weights kept, step clock stopped, traffic not counted"
            reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
            return self.conclude(Action.HOLD, [reason], message, {"phase": Phase.PAUSED})
        if command is Command.ABORT and active:
            message = f"rolled back by a person at {self.step_name(self.status.step_index)}"
            reason = _about_the_rollout(Verdict.FAIL, rule, message)
            return self.rollback([reason], message, {})
        if command is Command.PROMOTE and active:
            message = f"promoted by a person at {self.step_name(self.status.step_index)}"
            reason = _about_the_rollout(Verdict.PASS, rule, message)
            changes: dict[str, object] = {
                "phase": Phase.SUCCEEDED,
                "weights": Weights.canary_percent(100),
            }
            return self.conclude(Action.PROMOTE, [reason], message, changes)
        message = f"{command.value!r} ignored: the rollout is {phase.value}"
        reason = _about_the_rollout(Verdict.INCONCLUSIVE, rule, message)
        return self.conclude(Action.HOLD, [reason], message, {})

    def rollback(
        self, reasons: Sequence[Reason], message: str, changes: dict[str, object]
    ) -> Decision:
        changes |= {"phase": Phase.ROLLED_BACK, "weights": Weights.canary_percent(0)}
        return self.conclude(Action.ROLLBACK, reasons, message, changes)

    def advance(
        self, reasons: Sequence[Reason], counters: StepCounters, changes: dict[str, object]
    ) -> Decision:
        spec, index = self.rollout.spec, self.status.step_index
        steps, passed = spec.steps, self.step_name(index)
        last = index + 1 == len(steps)
        gates = [gate for gate in spec.gates if gate.before == ("promote" if last else "advance")]
        if gates:
            held, reasons = self.gated(gates, reasons, changes)
            if held is not None:
                return held
        stable_served = self.status.weights.stable > 0
        changes |= {
            "reference": counters.stable.total if stable_served else self.status.reference,
            "metric_reference": self.metric_reference() if stable_served else {},
        }
        if last and spec.promotion.bake is None:
            changes |= {"phase": Phase.SUCCEEDED, "weights": Weights.canary_percent(100)}
            message = f"promoted: every check passed at {passed}"
            return self.conclude(Action.PROMOTE, reasons, message, changes)
        changes |= {
            "step_started_at": self.now,
            "counters": StepCounters.begin(self.observation),
        }
        if last:
            changes |= {"phase": Phase.BAKING, "weights": Weights.canary_percent(100)}
            message = (
                f"promoted: every check passed at {passed}; baking "
                f"{format_duration(spec.promotion.bake or timedelta())} with "
                f"{spec.stable.version} deployed at weight 0"
            )
            return self.conclude(Action.PROMOTE, reasons, message, changes)
        weights = Weights.canary_percent(spec.canary_percent(index + 1))
        changes |= {"step_index": index + 1, "weights": weights}
        message = f"advanced to {self.step_name(index + 1)}: every check passed at {passed}"
        return self.conclude(Action.ADVANCE, reasons, message, changes)

    def metric_reference(self) -> dict[str, float]:
        """Stable's latest value of each compared metric check, for a step where it serves
        nothing."""
        latest = {
            name: values.stable
            for name, values in self.observation.metrics.items()
            if values.stable is not None
        }
        return {**self.status.metric_reference, **latest}

    def gated(
        self, gates: Sequence[Gate], reasons: Sequence[Reason], changes: dict[str, object]
    ) -> tuple[Decision | None, list[Reason]]:
        """Ask the gates before moving on: a hold while any is closed (never a rollback: a gate
        says "not yet", not "worse"), else the reasons with the gates' answers."""
        if self.confirm is None:
            outcomes = [GateOutcome(g.name, False, "no gate caller configured") for g in gates]
        else:
            outcomes = list(self.confirm(gates))
        event = gates[0].before
        rule = f"every gate must answer 2xx before the rollout may {event}"
        answered = [
            reason_for(
                f"gate:{o.name}", Verdict.PASS if o.open else Verdict.INCONCLUSIVE, rule,
                o.detail, Seen(),
            )
            for o in outcomes
        ]  # fmt: skip
        closed = [o for o in outcomes if not o.open]
        if not closed:
            return None, [*reasons, *answered]
        details = "; ".join(f"{o.name}: {o.detail}" for o in closed)
        message = (
            f"holding at {self.step_name(self.status.step_index)}: every check passed, "
            f"waiting for gate {', '.join(o.name for o in closed)} to {event}: {details}"
        )
        return self.conclude(Action.HOLD, [*reasons, *answered], message, changes), []


def _pending_labels(status: RolloutStatus, counters: StepCounters) -> dict[str, float]:
    """Per version, the step's predictions still without a label: a label that has not come
    back yet (or never will, for a prediction nobody labels)."""
    pending = {}
    for version, window in (
        (status.stable_version, counters.stable),
        (status.canary_version, counters.canary),
    ):
        unlabeled = window.total.unlabeled()
        if version is not None and unlabeled is not None:
            pending[version] = unlabeled
    return pending


def _with_forecast(reason: Reason, forecast: Forecast | None, wait_s: float) -> Reason:
    """The reason with the time it still needs (at least the labels' wait), said in words."""
    if forecast is None:
        words = "no forecast: too few samples yet, or none at this rate"
        return reason.model_copy(update={"message": f"{reason.message}; {words}"})
    seconds = max(forecast.seconds, wait_s)
    words = (
        f"at this rate about {format_duration(timedelta(seconds=round(seconds)))} more "
        f"(~{forecast.samples:.0f} more canary {forecast.unit})"
    )
    return reason.model_copy(
        update={
            "message": f"{reason.message}; {words}",
            "forecast_seconds": seconds,
            "forecast_samples": forecast.samples,
        }
    )


def _overrun(reasons: Sequence[Reason], left: timedelta) -> str:
    """Said as soon as the forecast shows it: the checks that cannot conclude in time."""
    late = [
        r
        for r in reasons
        if r.verdict is Verdict.INCONCLUSIVE
        and r.forecast_seconds is not None
        and r.forecast_seconds > left.total_seconds()
    ]
    if not late:
        return ""
    names = ", ".join(r.metric for r in late)
    return (
        f"; at this rate {names} cannot conclude within maxDuration ({format_duration(left)} left)"
    )


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def apply_command(
    rollout: ModelRollout,
    status: RolloutStatus,
    request: CommandRequest,
    observation: Observation,
    now: datetime,
) -> Decision:
    """Carry out a person's request instead of deciding.

    Abort rolls back and promote sends all traffic to the canary whatever the analysis says: a
    person may know what the metrics cannot. Resume analyses the tick at once. A command that
    does not apply to the rollout's phase, or a word that is no command, is recorded and changes
    nothing, and one that finds the versions changed gives way to the restart that `decide`
    makes. In every case the request is recorded as carried out.
    """
    _aware(now)
    spec = rollout.spec
    tick = _Tick(rollout, status, observation, now, request)
    if (status.stable_version, status.canary_version) != (spec.stable.version, spec.canary.version):
        return _decide(tick)
    return tick.command(request)


def _decide(tick: _Tick) -> Decision:
    spec, status = tick.rollout.spec, tick.status
    if status.phase is Phase.PAUSED:
        return tick.paused()
    versions = (spec.stable.version, spec.canary.version)
    if status.phase is Phase.PENDING or (status.stable_version, status.canary_version) != versions:
        return tick.start()
    if status.phase in FINISHED:
        return tick.finished()
    return tick.analyse()


def decide(
    rollout: ModelRollout,
    status: RolloutStatus,
    observation: Observation,
    now: datetime,
    confirm: Confirm | None = None,
) -> Decision:
    """Decide this tick from the rollout, the persisted status and the metrics read just now.

    `now` must be timezone-aware; it dates the decision and measures the step against
    maxDuration, while `observation.timestamp` only orders observations. `confirm` asks the
    spec's gates, when the rollout would move on past them.
    """
    _aware(now)
    return _decide(_Tick(rollout, status, observation, now, confirm=confirm))


def refuse(status: RolloutStatus, message: str, now: datetime) -> RolloutStatus:
    """The status of a rollout that cannot run at all (an invalid spec): Failed, explained."""
    _aware(now)
    return status.model_copy(
        update={
            "phase": Phase.FAILED,
            "message": message,
            "conditions": conditions_for(status.conditions, Phase.FAILED, message, now),
        }
    )
