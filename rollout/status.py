"""Where a rollout stands between two controller ticks: a local JSON file or the CRD's status.

Why the status holds the step's counter windows and stable's reference counts: the decision
engine is a pure function, so everything it must remember from one tick to the next is here. A
controller restarted in the middle of a step resumes where it stopped, and any decision can be
replayed from (spec, status, observation, now).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from mlcanary.rollout.observations import ArmCounters, CamelModel, CounterWindow, Observation

__all__ = [
    "FINISHED",
    "HISTORY_LIMIT",
    "Action",
    "Condition",
    "DecisionRecord",
    "MetricTally",
    "Phase",
    "Reason",
    "RolloutStatus",
    "StepCounters",
    "Verdict",
    "Weights",
]

HISTORY_LIMIT = 20  # enough to explain the last ten minutes at a 30s interval, small for etcd


class Phase(StrEnum):
    """The rollout's lifecycle, one value at a time."""

    # Accepted, nothing decided yet: no traffic has been moved.
    PENDING = "Pending"
    # The canary serves the current step's weight while the step's analysis runs.
    PROGRESSING = "Progressing"
    # Frozen by a person, or at an inconclusive deadline with inconclusive: pause: weights kept,
    # no decision; the step clock stops and the traffic served meanwhile is left out.
    PAUSED = "Paused"
    # Promoted, with the old stable still deployed at weight 0 while every check goes on for
    # promotion.bake; a regression meanwhile rolls back to it.
    BAKING = "Baking"
    # Every step passed: the canary serves 100% and can become the stable version.
    SUCCEEDED = "Succeeded"
    # A significant regression, or a step still inconclusive at maxDuration: stable serves 100%.
    ROLLED_BACK = "RolledBack"
    # The controller could not carry out a decision (router or status store error): needs a person.
    FAILED = "Failed"


FINISHED = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED})


class Action(StrEnum):
    """What the engine concluded. The controller applies the decision's weights whatever it is."""

    HOLD = "hold"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Weights(CamelModel):
    """Traffic percentages; integers because Istio and Gateway API weights are."""

    stable: int = Field(ge=0, le=100)
    canary: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _whole(self) -> Weights:
        if self.stable + self.canary != 100:
            raise ValueError(f"weights must add up to 100, not {self.stable + self.canary}")
        return self

    @classmethod
    def canary_percent(cls, percent: int) -> Weights:
        return cls(stable=100 - percent, canary=percent)


class Reason(CamelModel):
    """One piece of a decision's explanation, for status, logs and the CLI.

    `metric` is a metric name (accuracy, latency, latency-max, error-rate) or "analysis" for rules
    about the rollout itself (start, pause, deadline, stale data). Latencies are in seconds, like
    the Prometheus histograms they come from.
    """

    metric: str
    verdict: Verdict
    canary: float | None = None
    stable: float | None = None
    threshold: float | None = None
    rule: str
    message: str
    # For an inconclusive check: at the step's rate so far, how much longer it needs, and how
    # many more canary samples (labels, requests or evaluations) that is.
    forecast_seconds: float | None = None
    forecast_samples: float | None = None


class DecisionRecord(CamelModel):
    at: AwareDatetime
    step_index: int
    action: Action
    weights: Weights
    message: str
    reasons: tuple[Reason, ...] = ()


class Condition(CamelModel):
    """A Kubernetes-style condition; `last_transition_time` moves only when `status` changes."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    last_transition_time: AwareDatetime


class MetricTally(CamelModel):
    """How a user's metric check has gone in the current step, evaluation after evaluation."""

    evaluations: int = Field(default=0, ge=0)
    passes: int = Field(default=0, ge=0)  # consecutive evaluations within bounds, latest last
    failures: int = Field(default=0, ge=0)  # consecutive evaluations out of bounds


class StepCounters(CamelModel):
    """The current step's data: each version's counter window and how the ticks went."""

    stable: CounterWindow = CounterWindow()
    canary: CounterWindow = CounterWindow()
    analyses: int = Field(default=0, ge=0)  # ticks analysed in this step
    failed_queries: int = Field(default=0, ge=0)  # of those, ticks where some query failed
    metrics: dict[str, MetricTally] = Field(default_factory=dict)  # the user's checks

    @classmethod
    def begin(cls, observation: Observation) -> StepCounters:
        """Counters whose baseline is `observation`: every value it has starts at a total of 0."""
        return cls(
            stable=CounterWindow().update(observation.stable),
            canary=CounterWindow().update(observation.canary),
        )

    def update(
        self, observation: Observation, *, count: bool = True, failed_query: bool = False
    ) -> StepCounters:
        """Fold in one tick; ``count=False`` for a paused rollout (see `CounterWindow.update`)."""
        return self.model_copy(
            update={
                "stable": self.stable.update(observation.stable, count=count),
                "canary": self.canary.update(observation.canary, count=count),
                "analyses": self.analyses + int(count),
                "failed_queries": self.failed_queries + int(count and failed_query),
            }
        )


class RolloutStatus(CamelModel):
    phase: Phase = Phase.PENDING
    stable_version: str | None = None  # the versions the analysis below belongs to
    canary_version: str | None = None
    spec_hash: str | None = None  # of the spec behind the last decision
    step_index: int = Field(default=0, ge=0)
    weights: Weights = Weights(stable=100, canary=0)
    step_started_at: AwareDatetime | None = None
    last_analysis_at: AwareDatetime | None = None
    observed_at: AwareDatetime | None = None  # timestamp of the last observation taken in
    # Since when the step's metrics could not all be read (None while they can): a hold or a
    # rollback at maxDuration says so, and since when, instead of only "inconclusive".
    metrics_unavailable_since: AwareDatetime | None = None
    # Per version, the current step's predictions still without a label.
    pending_labels: dict[str, float] = Field(default_factory=dict)
    counters: StepCounters = StepCounters()
    # Stable's counts over the last step in which it served traffic: what the canary is compared
    # with at a step where stable serves nothing (the final 100%).
    reference: ArmCounters | None = None
    # Stable's last value of each of the user's compared metric checks, kept like `reference`.
    metric_reference: dict[str, float] = Field(default_factory=dict)
    history: tuple[DecisionRecord, ...] = Field(default=(), max_length=HISTORY_LIMIT)
    conditions: tuple[Condition, ...] = ()
    message: str = ""
    # The last command request carried out, as it was written (`CommandRequest.key`): a status
    # store that keeps requests on the rollout object itself, like the Kubernetes annotation,
    # tells a new one from it.
    last_command: str | None = None
    # When the version that lost a finished rollout may be retired: traffic has left it, and the
    # deadline gives the router (a gateway, a mesh) time to apply that and requests in flight
    # time to end. Kept here rather than slept through, so one controller thread never stalls
    # its other rollouts, and a restarted controller still retires it. None once retired.
    retire_at: AwareDatetime | None = None
