"""One line per controller tick: what the traffic split was and what each version looked like.

The controller appends these to a JSON-lines file while it runs; reports and plots are drawn from
that file alone, so a report can be redrawn after the fact and never needs the servers.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from mlcanary.rollout.observations import CamelModel
from mlcanary.rollout.status import Action, Phase, Weights

__all__ = ["ArmSnapshot", "TimelineSample"]


class ArmSnapshot(CamelModel):
    """A version's figures over the current step (from the step's counter increases)."""

    version: str
    labeled: float = 0.0
    accuracy: float | None = None  # a classifier's
    mae: float | None = None  # a regressor's mean absolute error
    requests: float = 0.0
    error_rate: float | None = None
    p95_ms: float | None = None


class TimelineSample(CamelModel):
    at: AwareDatetime
    rollout: str
    phase: Phase
    step_index: int
    weights: Weights
    action: Action
    message: str
    stable: ArmSnapshot
    canary: ArmSnapshot
