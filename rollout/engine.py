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
from datetime import UTC, datetime

from mlcanary.rollout.checks import (
    Seen,
    enabled_checks,
    error_budget,
    failed_queries,
    reason_for,
    unless_missing,
)
from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.conditions import conditions_for
from mlcanary.rollout.observations import ArmCounters, CamelModel, Observation
from mlcanary.rollout.spec import ModelRollout, format_duration
from mlcanary.rollout.status import (
    FINISHED,
    HISTORY_LIMIT,
    Action,
    DecisionRecord,
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

    def step_name(self, index: int) -> str:
        steps = self.rollout.spec.steps
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
            "weights": Weights.canary_percent(spec.steps[0]),
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
        step = self.step_name(status.step_index)
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
            stable_serves = status.weights.stable > 0
            checks = enabled_checks(analysis)
            missing = {
                metric: failed_queries(self.observation, metric, stable_serves)
                for metric, _ in checks
            }
            counters = status.counters.update(self.observation, failed_query=any(missing.values()))
            outage = self.outage()
            changes["metrics_unavailable_since"] = outage[0] if outage else None
            stable = counters.stable.total if stable_serves else status.reference or ArmCounters()
            budget = error_budget(analysis, len(self.rollout.spec.steps))
            reasons = [
                unless_missing(assess(counters.canary.total, stable, budget), missing[metric])
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
        cause = f"{outage[1]}; " if outage else ""
        if elapsed >= analysis.max_duration:
            message = (
                f"rolled back at {step}: still inconclusive after {format_duration(elapsed)} "
                f"(maxDuration {limit}): {cause}{', '.join(waiting)}"
            )
            rule = "a step still inconclusive at maxDuration rolls back"
            deadline = _about_the_rollout(Verdict.FAIL, rule, message)
            return self.rollback([*reasons, deadline], message, changes)
        message = (
            f"holding at {step} for {format_duration(elapsed)} of {limit}: "
            f"{cause}waiting on {', '.join(waiting)}"
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
        active = phase in {Phase.PROGRESSING, Phase.PAUSED}
        rule = f"a person's {command.value!r} command"
        if command is Command.RESUME and phase is Phase.PAUSED:
            return replace(
                self, status=self.status.model_copy(update={"phase": Phase.PROGRESSING})
            ).analyse()
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
        steps, index = self.rollout.spec.steps, self.status.step_index
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
    rollout: ModelRollout, status: RolloutStatus, observation: Observation, now: datetime
) -> Decision:
    """Decide this tick from the rollout, the persisted status and the metrics read just now.

    `now` must be timezone-aware; it dates the decision and measures the step against
    maxDuration, while `observation.timestamp` only orders observations.
    """
    _aware(now)
    return _decide(_Tick(rollout, status, observation, now))


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
