"""One line per controller tick: what the traffic split was and what each version looked like.

The controller appends these to a JSON-lines file while it runs; reports and plots are drawn from
that file alone, so a report can be redrawn after the fact and never needs the servers.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from mlcanary.rollout.observations import CamelModel
from mlcanary.rollout.status import Action, Phase, Weights

__all__ = ["ArmSnapshot", "ShadowSnapshot", "TimelineSample"]


class ArmSnapshot(CamelModel):
    """A version's figures over the current step (from the step's counter increases)."""

    version: str
    labeled: float = 0.0
    accuracy: float | None = None  # a classifier's
    mae: float | None = None  # a regressor's mean absolute error
    requests: float = 0.0
    error_rate: float | None = None
    p95_ms: float | None = None
    pending_labels: float = 0.0  # the step's predictions still without a label


class ShadowSnapshot(CamelModel):
    """A shadow step's comparison of the canary's answers with stable's, over the step."""

    compared: float  # rows both versions answered
    agreement: float | None = None  # a classifier's share of rows on which they agreed
    mean_difference: float | None = None  # a regressor's mean absolute difference
    lost: float = 0.0  # copies never compared: dropped, timed out or failed
    top_flips: dict[str, float] = Field(
        default_factory=dict
    )  # the most frequent "stable class→canary class"


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
    shadow: ShadowSnapshot | None = None  # at a shadow step
