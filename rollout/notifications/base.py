"""What the controller tells people, and the port it tells it through.

Why here, pure, and the sending elsewhere: whether a tick is worth a message, and what the
message says, follows from the status before the tick and the decision made (an event, the
reasons with their values, thresholds and rules), so it is decided beside the engine and tested
from tables; the senders (`mlcanary.notify`, `mlcanary.k8s.events`) only deliver it.

The `Notification` is the generic webhook's JSON body as it is sent, field by field in
docs/notifications.md; Slack and Teams get a message drawn from it (`headline`, `lines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import AwareDatetime

from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.notifications.spec import (
    ABORTED,
    ADVANCED,
    ON_ENTERING,
    RESUMED,
    STARTED,
    WARNINGS,
)
from mlcanary.rollout.observations import CamelModel
from mlcanary.rollout.status import Action, Phase, Reason, RolloutStatus, Weights

if TYPE_CHECKING:
    from mlcanary.rollout.engine import Decision
    from mlcanary.rollout.spec import ModelRollout

__all__ = [
    "Notification",
    "Notifier",
    "NotifierGroup",
    "RolloutRef",
    "event_of",
    "notification_for",
]

_WORDS = {
    STARTED: "started",
    ADVANCED: "advanced",
    "Paused": "paused",
    RESUMED: "resumed",
    "Promoted": "promoted",
    "RolledBack": "rolled back",
    ABORTED: "aborted by a person",
    "Failed": "failed",
}


class RolloutRef(CamelModel):
    name: str
    namespace: str | None = None  # None on this machine


class Notification(CamelModel):
    """One event of one rollout: the webhook's body, and what every other target is told."""

    api_version: Literal["mlcanary.dev/v1alpha1"] = "mlcanary.dev/v1alpha1"
    kind: Literal["RolloutNotification"] = "RolloutNotification"
    event: str
    severity: Literal["info", "warning"]
    at: AwareDatetime
    rollout: RolloutRef
    model: str
    stable_version: str
    canary_version: str
    phase: Phase
    previous_phase: Phase
    step_index: int
    steps: tuple[int | str, ...]  # a canary percentage, or "shadow"
    weights: Weights
    action: Action
    message: str
    reasons: tuple[Reason, ...] = ()

    @property
    def headline(self) -> str:
        """One line for a chat message's title or an Event's summary."""
        words = _WORDS.get(self.event, self.event.lower())
        step = f"step {self.step_index + 1}/{len(self.steps)}"
        return (
            f"{self.rollout.name} {words}: {self.model} {self.stable_version} -> "
            f"{self.canary_version}, {step}, canary at {self.weights.canary}%"
        )

    def lines(self) -> list[str]:
        """The decision's message, then one line per reason, verdict first."""
        return [self.message, *(f"{r.verdict.value} {r.metric}: {r.message}" for r in self.reasons)]


def event_of(previous: RolloutStatus, current: RolloutStatus, *, aborted: bool) -> str | None:
    """The event a decision is, or None when it changed nothing worth telling (a hold)."""
    if current.phase is Phase.PENDING:
        return None
    versions = (current.stable_version, current.canary_version)
    restarted = (previous.stable_version, previous.canary_version) != versions
    if current.phase is previous.phase and not restarted:
        return ADVANCED if current.step_index > previous.step_index else None
    if current.phase is Phase.PROGRESSING:
        return RESUMED if previous.phase is Phase.PAUSED and not restarted else STARTED
    if current.phase is Phase.ROLLED_BACK and aborted:
        return ABORTED
    return ON_ENTERING.get(current.phase, current.phase.value)


def notification_for(
    rollout: ModelRollout,
    previous: RolloutStatus,
    decision: Decision,
    request: CommandRequest | None,
    now: datetime,
) -> Notification | None:
    """The notification a saved decision calls for, or None."""
    current = decision.status
    aborted = request is not None and request.command is Command.ABORT
    event = event_of(previous, current, aborted=aborted)
    if event is None:
        return None
    spec = rollout.spec
    return Notification(
        event=event,
        severity="warning" if event in WARNINGS else "info",
        at=now,
        rollout=RolloutRef(name=rollout.metadata.name, namespace=rollout.metadata.namespace),
        model=spec.model,
        stable_version=spec.stable.version,
        canary_version=spec.canary.version,
        phase=current.phase,
        previous_phase=previous.phase,
        step_index=current.step_index,
        steps=tuple(spec.steps),
        weights=decision.weights,
        action=decision.action,
        message=decision.message,
        reasons=decision.reasons,
    )


class Notifier(Protocol):
    """Where the controller hands each notification, once its decision is saved.

    ``notify`` must return at once whatever the target does (slow, down, refusing): it runs on
    the controller's tick. ``close`` delivers what is still queued within the notifier's own
    bound, then stops."""

    def notify(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


class NotifierGroup:
    """Several notifiers as one (a cluster's Events and the spec's targets); none is a valid
    group, the default of a controller that tells nobody."""

    def __init__(self, notifiers: Sequence[Notifier] = ()) -> None:
        self.notifiers = tuple(notifiers)

    def notify(self, notification: Notification) -> None:
        for notifier in self.notifiers:
            notifier.notify(notification)

    def close(self) -> None:
        for notifier in self.notifiers:
            notifier.close()
