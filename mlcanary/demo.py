"""The single-machine demo: two real rollouts of the digits reference versions, end to end.

Trains the reference versions, then runs two rollouts on the local platform under labeled
Locust traffic (`mlcanary.local.scenario`): a better canary that is promoted 10% -> 100%, then a
less accurate one that is rolled back. A markdown report and a PNG plot are written at the end.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

import mlcanary.rollout
from mlcanary.local.scenario import Expected, Traffic, run_rollouts
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.rollout.status import Phase

__all__ = ["EXAMPLES", "run_demo"]

EXAMPLES = Path(mlcanary.rollout.__file__).parent / "examples"
ROLLOUTS = (
    Expected(EXAMPLES / "better-canary.yaml", Phase.SUCCEEDED),
    Expected(EXAMPLES / "worse-canary.yaml", Phase.ROLLED_BACK),
)


def run_demo(workdir: Path, console: Console, *, fast: bool = False, users: int = 8) -> int:
    console.rule("train the digits reference versions")
    for outcome in train_reference_versions():
        v = outcome.version
        console.print(
            f"{v.ref}: {v.description} ({v.role}), holdout accuracy {v.holdout['accuracy']:.4f}"
        )
    code = run_rollouts(ROLLOUTS, workdir, console, traffic=Traffic(users=users), fast=fast)
    if code == 0:
        console.print(
            "[green]as expected: the better canary was promoted, the worse rolled back[/]"
        )
    return code
