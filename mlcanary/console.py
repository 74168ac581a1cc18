"""The command line's one output layer: where commands print, how they fail, what they exit with.

Every ``mlcanary`` command prints results on `console` (stdout) and problems on `err` (stderr),
fails through `fail`, and exits with a code of `ExitCode`, so that a script can tell a broken
input from a regression whatever the command. The codes are listed in the README.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from mlcanary.rollout.spec import ModelRollout

__all__ = ["ExitCode", "console", "err", "fail", "read_rollout", "spec_problem_lines"]


class ExitCode(IntEnum):
    # Done: the command did what it was asked (a rollout run: the canary was promoted).
    OK = 0
    # The command ran and the answer is no: manifests that fail validation, no capacity within
    # the objective, a server that cannot be reached, a budget broken.
    ERROR = 1
    # Bad input: a spec, a flag or a file is invalid. Nothing was started or changed.
    INVALID = 2
    # A rollout run ended rolled back: the canary regressed (or could not be shown safe in time).
    ROLLED_BACK = 3
    # A rollout run ended failed: the controller could not carry out a decision.
    FAILED = 4


console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(problem: str | Sequence[str], code: ExitCode = ExitCode.ERROR) -> NoReturn:
    """Print each problem as one ``error:`` line on stderr and exit with ``code``."""
    for line in [problem] if isinstance(problem, str) else problem:
        err.print(f"[bold red]error:[/] {line}", markup=True)
    raise typer.Exit(int(code))


def read_rollout(path: Path) -> ModelRollout:
    """The ModelRollout in ``path``, or exit INVALID with one line per problem, each naming the
    file and the field (or line) at fault."""
    from mlcanary.rollout.spec import SpecError, load_spec_file

    try:
        return load_spec_file(path)
    except SpecError as error:
        fail(spec_problem_lines(path, error.problems), ExitCode.INVALID)


def spec_problem_lines(path: Path, problems: Sequence[tuple[str, str]]) -> list[str]:
    """At most three lines, each naming the file and the field (or line): a spec with many
    problems shows its first ones, and says how many more there are."""
    lines = [f"{path}: {where}: {problem}" for where, problem in problems]
    if len(lines) <= 3:
        return lines
    return [*lines[:2], f"{path}: and {len(lines) - 2} more problems"]
