"""Kubernetes-style conditions of a rollout, decided by the core from its phase.

Why here and not in a status store: the local file store and the cluster's status subresource
must persist the same status, and ``kubectl wait --for=condition=...``, dashboards and the local
``rollout status --json`` read conditions, not mlcanary's phases. A condition computed from the
phase cannot disagree with it.

* ``Promoted`` (Flagger's): Unknown until the rollout ends, then True (Succeeded) or False.
* ``Progressing``: True while the rollout is pending, analysing a step or baking; False once it
  is paused or finished, with the phase as the reason.
* ``Degraded``: True when the rollout rolled back or failed, False otherwise.

``lastTransitionTime`` moves only when a condition's status changes, as Kubernetes requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from mlcanary.rollout.status import Condition, Phase

__all__ = ["DEGRADED", "PROGRESSING", "PROMOTED", "conditions_for"]

PROMOTED = "Promoted"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
_ACTIVE = frozenset({Phase.PENDING, Phase.PROGRESSING, Phase.BAKING})
_BAD = frozenset({Phase.ROLLED_BACK, Phase.FAILED})
Truth = Literal["True", "False", "Unknown"]


def _promoted(phase: Phase) -> Truth:
    if phase is Phase.SUCCEEDED:
        return "True"
    return "False" if phase in _BAD else "Unknown"


def conditions_for(
    previous: Sequence[Condition], phase: Phase, message: str, now: datetime
) -> tuple[Condition, ...]:
    """The conditions of a status in ``phase``; conditions of other types are kept as they are."""
    existing = {c.type: c for c in previous}
    message = message or phase.value

    def condition(kind: str, value: Truth, reason: str) -> Condition:
        before = existing.get(kind)
        since = before.last_transition_time if before and before.status == value else now
        return Condition(
            type=kind, status=value, reason=reason, message=message, last_transition_time=since
        )

    ours = (
        condition(PROMOTED, _promoted(phase), phase.value),
        condition(PROGRESSING, "True" if phase in _ACTIVE else "False", phase.value),
        condition(
            DEGRADED,
            "True" if phase in _BAD else "False",
            phase.value if phase in _BAD else "AsExpected",
        ),
    )
    kinds = {c.type for c in ours}
    return (*(c for c in previous if c.type not in kinds), *ours)
