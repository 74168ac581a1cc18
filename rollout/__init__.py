"""The rollout core: spec and status types, the sequential tests and the pure decision engine.

The core modules exported here (spec, status, observations, sequential, decision) do no I/O:
the adapters (metrics providers, routers, status stores, the run loop) import them and never the
reverse, so every rule can be tested from tables and every decision replayed from a stored status.
"""

from mlcanary.rollout.decision import Decision, ErrorBudget, apply_command, decide, error_budget
from mlcanary.rollout.observations import ArmCounters, CounterWindow, Observation
from mlcanary.rollout.spec import ModelRollout, RolloutSpec, SpecError, load_spec
from mlcanary.rollout.status import (
    Action,
    Phase,
    Reason,
    RolloutStatus,
    StepCounters,
    Verdict,
    Weights,
)

__all__ = [
    "Action",
    "ArmCounters",
    "CounterWindow",
    "Decision",
    "ErrorBudget",
    "ModelRollout",
    "Observation",
    "Phase",
    "Reason",
    "RolloutSpec",
    "RolloutStatus",
    "SpecError",
    "StepCounters",
    "Verdict",
    "Weights",
    "apply_command",
    "decide",
    "error_budget",
    "load_spec",
]
