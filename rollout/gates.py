"""Gating webhooks (`spec.Gate`): what the engine asks before it advances or promotes.

Why the engine is handed a function instead of the answers: a gate is asked only when every
check has passed and the rollout would move on, as Flagger asks its confirm-traffic-increase and
confirm-promotion webhooks, never at ticks that hold anyway. The function does the HTTP (an
adapter, `mlcanary.local.gates`); the engine stays free of I/O and its tables pass a plain
function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlcanary.rollout.spec import Gate

__all__ = ["Confirm", "GateOutcome"]


@dataclass(frozen=True)
class GateOutcome:
    name: str
    open: bool  # answered 2xx
    detail: str  # what it answered, or why it could not be asked


Confirm = Callable[[Sequence[Gate]], Sequence[GateOutcome]]
