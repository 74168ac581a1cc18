"""The rollout core: spec and status types, the sequential tests, the checks and the pure state
machine, the ports the platforms implement (router, metrics provider, status store, workloads)
with their test doubles, and the run loop.

Nothing here does I/O or imports an I/O library: the platforms (`mlcanary.local`,
`mlcanary.k8s`) and the metrics providers (`mlcanary.metrics`) import the core and never the
reverse, so every rule can be tested from tables and every decision replayed from a stored status.
"""

from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.engine import Decision, apply_command, decide
from mlcanary.rollout.observations import ArmCounters, CounterWindow, Observation
from mlcanary.rollout.spec import ModelRollout, RolloutSpec, SpecError, load_spec, parse_spec
from mlcanary.rollout.status import (
    Action,
    Phase,
    Reason,
    RolloutStatus,
    StepCounters,
    Verdict,
    Weights,
)
from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)

__all__ = [
    "Action",
    "ArmCounters",
    "Command",
    "CommandRequest",
    "CounterWindow",
    "Decision",
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
    "load_spec",
    "parse_spec",
]
