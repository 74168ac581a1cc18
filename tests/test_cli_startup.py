"""The command line imports a command's dependencies only when that command runs.

What these tests hold is what makes the light commands start at once (the measured start-up
time and memory are in docs/packaging.md, with the command): the module graph, read from
``python -X importtime`` of the real commands, not a timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from mlcanary.cli import app
from mlcanary.lazy_group import LazyGroup, load_command

HEAVY = ("torch", "bentoml", "locust", "matplotlib", "kubernetes", "sklearn", "pandas")


def _imported(*args: str, cwd: Path) -> set[str]:
    """The top-level names of every module ``mlcanary ARGS`` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlcanary.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "mlcanary" in names, result.stderr[-2000:]
    return names


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["rollout", "status", "--state-dir", "state"],
        ["router", "routes", "--state-dir", "state"],
        ["platform", "status", "--state-dir", "state"],
    ],
)
def test_the_light_commands_import_no_heavy_dependency(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    assert _imported(*args, cwd=tmp_path).isdisjoint(HEAVY)


def test_the_controller_loads_the_kubernetes_client_and_no_serving_stack(tmp_path: Path) -> None:
    imported = _imported("controller", "--help", cwd=tmp_path)
    assert "kubernetes" in imported
    assert imported.isdisjoint({"torch", "bentoml", "locust", "matplotlib", "sklearn"})


def test_the_listing_shows_each_commands_own_help() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    for name, entry in LazyGroup.lazy.items():
        assert load_command(name, entry.target).get_short_help_str(500) == entry.help, name


def test_a_lazy_command_runs_and_shows_its_help_through_the_group(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlcanary.cli", "gpu", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "info" in result.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "mlcanary.cli", "rollot"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert unknown.returncode == 2
    assert "No such command 'rollot'. Did you mean 'rollout'?" in unknown.stderr
