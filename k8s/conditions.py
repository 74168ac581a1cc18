"""Kubernetes-style conditions for a ModelRollout, derived from its phase.

Why derived: `kubectl wait --for=condition=Progressing=false` and dashboards read conditions, not
mlcanary's phases, and a condition computed from the phase cannot disagree with it. The decision
engine keeps its own ``Promoted`` condition (Flagger's); these two sit next to it:

* ``Progressing``: True while the rollout is pending or analysing a step; False once it is
  paused or finished, with the phase as the reason.
* ``Degraded``: True when the rollout rolled back or failed, False otherwise.

``lastTransitionTime`` moves only when a condition's status changes, as Kubernetes requires.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mlcanary.rollout.status import Condition, Phase, RolloutStatus

__all__ = ["DEGRADED", "PROGRESSING", "with_conditions"]

PROGRESSING = "Progressing"
DEGRADED = "Degraded"
_ACTIVE = frozenset({Phase.PENDING, Phase.PROGRESSING})
_BAD = frozenset({Phase.ROLLED_BACK, Phase.FAILED})
Truth = Literal["True", "False", "Unknown"]


def _condition(
    previous: Condition | None, kind: str, value: Truth, *, reason: str, message: str, now: datetime
) -> Condition:
    since = previous.last_transition_time if previous and previous.status == value else now
    return Condition(
        type=kind, status=value, reason=reason, message=message, last_transition_time=since
    )


def with_conditions(status: RolloutStatus, now: datetime) -> RolloutStatus:
    phase = status.phase
    existing = {c.type: c for c in status.conditions}
    progressing: Truth = "True" if phase in _ACTIVE else "False"
    degraded: Truth = "True" if phase in _BAD else "False"
    message = status.message or phase.value
    ours = (
        _condition(
            existing.get(PROGRESSING),
            PROGRESSING,
            progressing,
            reason=phase.value,
            message=message,
            now=now,
        ),
        _condition(
            existing.get(DEGRADED),
            DEGRADED,
            degraded,
            reason=phase.value if phase in _BAD else "AsExpected",
            message=message,
            now=now,
        ),
    )
    others = tuple(c for c in status.conditions if c.type not in {PROGRESSING, DEGRADED})
    return status.model_copy(update={"conditions": (*others, *ours)})
