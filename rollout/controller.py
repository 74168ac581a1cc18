"""The run loop: read status, observe, decide, persist, route — one tick at a time.

All judgement is in `decision` (pure); this module only moves data between the adapters, in an
order chosen so that a controller killed at any instant resumes correctly:

1. the router is first brought back to the weights of the persisted status (a kill between a
   save and a routing change leaves the router one decision behind; this repairs it);
2. the decision is computed and persisted;
3. only then is the router changed to the new weights;
4. last, a decision worth telling (a phase change, a step advanced, an abort) goes to the
   notifier (`mlcanary.rollout.notifications`), which only queues it: a slow or broken target
   never delays a tick or changes a decision.

The status is therefore always the truth, and the router converges to it on every tick. A failed
metrics query is handed to the engine as missing data (it holds, and rolls back at the step's
deadline); a router or workload that cannot be reached is reported and retried next tick; a
status written meanwhile by someone else is reported as a conflicted tick, which the caller may
retry at once (`TickOutcome`).

The version that lost a finished rollout is retired once the drain deadline kept in the status
(``retireAt``) has passed, not after a sleep inside the tick: one controller thread may serve
many rollouts, and none of them waits on another's drain.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from mlcanary.rollout.clock import utcnow
from mlcanary.rollout.commands import CommandRequest
from mlcanary.rollout.engine import Decision, apply_command, decide
from mlcanary.rollout.gates import Confirm
from mlcanary.rollout.metrics.base import MetricsProvider, MetricsUnavailableError, Target
from mlcanary.rollout.mirror.base import Mirror, MirrorUnavailableError
from mlcanary.rollout.notifications.base import Notifier, NotifierGroup, notification_for
from mlcanary.rollout.observations import ArmCounters, Observation, histogram_quantile
from mlcanary.rollout.routers.base import Route, Router, RouterUnavailableError, RouteTable
from mlcanary.rollout.shadow import mirror_target, shadow_snapshot
from mlcanary.rollout.spec import SHADOW, ModelRollout, format_duration
from mlcanary.rollout.status import FINISHED, Phase, RolloutStatus, Weights
from mlcanary.rollout.store.base import ConflictError, StatusStore
from mlcanary.rollout.timeline import ArmSnapshot, TimelineSample
from mlcanary.rollout.workloads import WorkloadNotReadyError, Workloads

__all__ = ["Controller", "TickOutcome", "TickReport"]

logger = logging.getLogger("mlcanary.rollout")


class TickOutcome(StrEnum):
    """How a tick ended."""

    # A decision was made and persisted (the router may still have been unreachable after it:
    # see the report's problem).
    DECIDED = "decided"
    # Nothing was decided: the router could not be brought back to the persisted weights.
    UNROUTED = "unrouted"
    # The decision was not persisted: the status changed since it was loaded. Nothing was
    # routed; ticking again at once decides on the status as it now is.
    CONFLICTED = "conflicted"
    # A finished rollout: its loser was retired, or waits for its drain deadline.
    SETTLING = "settling"


@dataclass(frozen=True)
class TickReport:
    """What one tick did, for logs and the live display."""

    outcome: TickOutcome
    status: RolloutStatus
    decision: Decision | None = None
    problem: str | None = None
    sample: TimelineSample | None = None

    @property
    def settled(self) -> bool:
        """Finished, its loser retired and nothing left to report: the loop may end."""
        return (
            self.problem is None and self.status.phase in FINISHED and self.status.retire_at is None
        )


def _snapshot(version: str, counters: ArmCounters, quantile: float) -> ArmSnapshot:
    judged = (counters.feedback_correct or 0.0) + (counters.feedback_incorrect or 0.0)
    measured = counters.feedback_measured or 0.0
    labeled = judged + measured
    requests = counters.requests or 0.0
    latency = None
    if counters.latency_buckets:
        value = histogram_quantile(quantile, counters.latency_buckets)
        latency = value * 1000 if math.isfinite(value) else None
    return ArmSnapshot(
        version=version,
        labeled=labeled,
        accuracy=(counters.feedback_correct or 0.0) / judged if judged else None,
        mae=(counters.absolute_error_sum or 0.0) / measured if measured else None,
        requests=requests,
        error_rate=(counters.server_errors or 0.0) / requests if requests else None,
        p95_ms=latency,
        pending_labels=counters.unlabeled() or 0.0,
    )


@dataclass
class Controller:
    rollout: ModelRollout
    router: Router
    metrics: MetricsProvider
    store: StatusStore
    workloads: Workloads
    timeline: Path | None = None
    # How long the loser of a finished rollout keeps serving after traffic has left it.
    drain: timedelta = timedelta(seconds=2)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    notifier: Notifier = field(default_factory=NotifierGroup)
    # Asks the spec's gates (`mlcanary.notify.gates`) when the rollout would move past them.
    confirm: Confirm | None = None
    # Tells stable's servers to copy requests to the canary during a shadow step.
    mirror: Mirror | None = None
    _backends: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.rollout.metadata.name

    @property
    def target(self) -> Target:
        spec = self.rollout.spec
        return Target(
            spec.model,
            spec.stable.version,
            spec.canary.version,
            queries=tuple((check.name, check.query) for check in spec.analysis.metrics),
            namespace=self.rollout.metadata.namespace or "default",
            interval=format_duration(spec.analysis.interval),
        )

    def _load(self) -> tuple[RolloutStatus, str | None]:
        stored = self.store.load(self.name)
        return (stored.status, stored.revision) if stored else (RolloutStatus(), None)

    def _serving(self, status: RolloutStatus) -> list[str]:
        """The versions that may get traffic in this phase."""
        spec = self.rollout.spec
        if status.phase is Phase.SUCCEEDED:
            return [spec.canary.version]
        if status.phase is Phase.ROLLED_BACK:
            return [spec.stable.version]
        return [spec.stable.version, spec.canary.version]

    def _serve(self, status: RolloutStatus) -> str | None:
        """Make sure the versions that may get traffic are served; a problem, or None."""
        for version in self._serving(status):
            try:
                self._backends[version] = self.workloads.ensure(self.rollout.spec.model, version)
            except WorkloadNotReadyError as exc:
                self._backends.pop(version, None)
                return str(exc)
        return None

    def _route(self, weights: Weights) -> None:
        """Route by `weights` among the versions that are served; one not ready gets nothing."""
        spec = self.rollout.spec
        arms = [(spec.stable.version, weights.stable), (spec.canary.version, weights.canary)]
        served = [(v, w) for v, w in arms if v in self._backends]
        if not served:
            raise RouterUnavailableError("no version is served: nothing to route to")
        if len(served) == 1:
            served = [(served[0][0], 100)]
        table = RouteTable(routes=tuple(Route(v, self._backends[v], w) for v, w in served))
        if self.router.routes().routes != table.routes:
            self.router.set_routes(table)

    def _observe(self, now: datetime) -> Observation:
        try:
            return self.metrics.observe(self.target, now)
        except MetricsUnavailableError as exc:
            logger.warning("metrics unavailable: %s", exc)
            return Observation(timestamp=now, unavailable=str(exc))

    def tick(self) -> TickReport:
        status, revision = self._load()
        versions = (self.rollout.spec.stable.version, self.rollout.spec.canary.version)
        if status.phase in FINISHED and (status.stable_version, status.canary_version) == versions:
            return self._settle(status, revision)
        problem = self._serve(status)
        now = self.clock()
        try:
            if status.phase is not Phase.PENDING:
                self._route(status.weights)
        except RouterUnavailableError as exc:
            return TickReport(TickOutcome.UNROUTED, status, problem=f"router unavailable: {exc}")
        observation = self._observe(now)
        if problem is not None:
            observation = Observation(
                timestamp=now,
                stable=observation.stable,
                unavailable=observation.unavailable or f"the canary is not served: {problem}",
            )
        request = self.store.take_command(self.name)
        if request is not None:
            decision = apply_command(self.rollout, status, request, observation, now)
        else:
            decision = decide(self.rollout, status, observation, now, self.confirm)
        if decision.status.phase in FINISHED and status.phase not in FINISHED:
            decision = decision.model_copy(
                update={
                    "status": decision.status.model_copy(update={"retire_at": now + self.drain})
                }
            )
        try:
            self.store.save(self.name, decision.status, revision)
        except ConflictError as exc:
            return TickReport(
                TickOutcome.CONFLICTED, status, problem=f"status changed meanwhile: {exc}"
            )
        try:
            self._route(decision.weights)
        except RouterUnavailableError as exc:
            problem = f"router unavailable: {exc}"
        problem = "; ".join(p for p in (problem, self._mirror(decision.status)) if p) or None
        for reason in decision.reasons:
            logger.info("%s: %s [%s] %s", self.name, reason.metric, reason.verdict, reason.message)
        self._notify(status, decision, request, now)
        sample = self._sample(decision)
        return TickReport(TickOutcome.DECIDED, decision.status, decision, problem, sample)

    def _notify(
        self,
        previous: RolloutStatus,
        decision: Decision,
        request: CommandRequest | None,
        now: datetime,
    ) -> None:
        """Hand a saved decision worth telling to the notifier; whatever happens there, the
        tick goes on."""
        notification = notification_for(self.rollout, previous, decision, request, now)
        if notification is None:
            return
        try:
            self.notifier.notify(notification)
        except Exception:
            logger.exception("%s: the notifier failed on %s", self.name, notification.event)

    def _mirror(self, status: RolloutStatus) -> str | None:
        """Copies to the canary flow during a shadow step only; the problem, or None. A rollout
        without a shadow step never touches the mirror setting."""
        if self.mirror is None or SHADOW not in self.rollout.spec.steps:
            return None
        try:
            self.mirror.set(
                self.rollout.spec.model, mirror_target(self.rollout, status, self._backends)
            )
        except MirrorUnavailableError as exc:
            return f"mirror unavailable: {exc}"
        return None

    def _sample(self, decision: Decision) -> TimelineSample:
        status = decision.status
        quantile = (
            self.rollout.spec.analysis.latency.quantile
            if self.rollout.spec.analysis.latency
            else 0.95
        )
        sample = TimelineSample(
            at=decision.status.last_analysis_at or self.clock(),
            rollout=self.name,
            phase=status.phase,
            step_index=status.step_index,
            weights=decision.weights,
            action=decision.action,
            message=decision.message,
            stable=_snapshot(
                self.rollout.spec.stable.version, status.counters.stable.total, quantile
            ),
            canary=_snapshot(
                self.rollout.spec.canary.version, status.counters.canary.total, quantile
            ),
            shadow=shadow_snapshot(status.counters.canary.total),
        )
        if self.timeline is not None:
            self.timeline.parent.mkdir(parents=True, exist_ok=True)
            with self.timeline.open("a") as handle:
                handle.write(sample.model_dump_json() + "\n")
        return sample

    def _settle(self, status: RolloutStatus, revision: str | None) -> TickReport:
        """A finished rollout: keep the winner routed, and retire the loser once its drain
        deadline has passed (the status then says it is retired)."""
        spec = self.rollout.spec
        winner, loser = (
            (spec.canary.version, spec.stable.version)
            if status.phase is Phase.SUCCEEDED
            else (spec.stable.version, spec.canary.version)
        )
        unmirrored = self._mirror(status)  # reported, and tried again, but retires all the same
        problem = None
        try:
            self._backends[winner] = self.workloads.ensure(spec.model, winner)
            self._backends.pop(loser, None)
            self._route(status.weights)
        except (WorkloadNotReadyError, RouterUnavailableError) as exc:
            problem = f"cannot keep {winner} serving: {exc}"
        if status.retire_at is None or problem is not None or self.clock() < status.retire_at:
            return TickReport(TickOutcome.SETTLING, status, problem=problem or unmirrored)
        self.workloads.retire(spec.model, loser)
        retired = status.model_copy(update={"retire_at": None})
        try:
            self.store.save(self.name, retired, revision)
        except ConflictError as exc:
            return TickReport(
                TickOutcome.CONFLICTED, status, problem=f"status changed meanwhile: {exc}"
            )
        logger.info("%s: retired %s", self.name, loser)
        return TickReport(TickOutcome.SETTLING, retired, problem=unmirrored)

    def close(self) -> None:
        self.metrics.close()
        self.notifier.close()

    def run(self, on_tick: Callable[[TickReport], None] | None = None) -> RolloutStatus:
        """Tick every analysis interval until the rollout has finished and settled."""
        interval = self.rollout.spec.analysis.interval.total_seconds()
        while True:
            report = self.tick()
            if on_tick is not None:
                on_tick(report)
            if report.settled:
                return report.status
            wait = interval
            if report.status.retire_at is not None:
                until_retire = (report.status.retire_at - self.clock()).total_seconds()
                wait = min(wait, max(until_retire, 0.0))
            self.sleep(wait)
