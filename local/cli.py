"""``mlcanary rollout`` and ``mlcanary platform``: run and steer rollouts on this machine.

``rollout run`` exits with `ExitCode`: OK promoted, ROLLED_BACK, FAILED, INVALID for an invalid
spec or input, ERROR for anything else. Scripts and CI can tell a regression from a broken spec.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from mlcanary.console import ExitCode, console, fail, read_rollout, spec_problem_lines
from mlcanary.local.platform import LocalPlatform, local_problems
from mlcanary.rollout.commands import Command
from mlcanary.rollout.controller import TickReport
from mlcanary.rollout.spec import ModelRollout
from mlcanary.rollout.status import Phase, Verdict

__all__ = ["platform_app", "rollout_app"]

_EXIT = {
    Phase.SUCCEEDED: ExitCode.OK,
    Phase.ROLLED_BACK: ExitCode.ROLLED_BACK,
    Phase.FAILED: ExitCode.FAILED,
}

rollout_app = typer.Typer(no_args_is_help=True, help="Run, watch and steer canary rollouts.")
platform_app = typer.Typer(no_args_is_help=True, help="The local services, router and Prometheus.")

StateDir = Annotated[
    Path | None,
    typer.Option(help="Status, processes and logs [default: $MLCANARY_HOME/local]."),
]


def _state_dir(value: Path | None) -> Path:
    from mlcanary.settings import mlcanary_home

    return value if value is not None else mlcanary_home() / "local"


def read_spec(path: Path) -> ModelRollout:
    """The spec, checked against the model store too: a missing version, or a quality check
    that does not fit the versions' task, is a spec error."""
    from mlcanary.models.registry import ModelRef, VersionNotFoundError, get_version
    from mlcanary.rollout.checks import task_problems

    rollout = read_rollout(path)
    spec = rollout.spec
    problems = local_problems(spec)
    tasks = {}
    for field, version in (("stable", spec.stable.version), ("canary", spec.canary.version)):
        try:
            tasks[field] = get_version(ModelRef(spec.model, version)).task.value
        except VersionNotFoundError as exc:
            problems.append((f"spec.{field}.version", str(exc)))
    if len(set(tasks.values())) > 1:
        problems.append(
            ("spec.canary.version", f"a {tasks['canary']} model; stable is a {tasks['stable']}")
        )
    elif tasks:
        problems += task_problems(spec.analysis, next(iter(tasks.values())))
    if problems:
        fail(spec_problem_lines(path, problems), ExitCode.INVALID)
    return rollout


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.1f}ms"
    return f"{value:.4g}"


def show_tick(report: TickReport) -> None:
    status = report.status
    weights = status.weights
    console.print(
        f"[bold]{status.phase.value}[/] step {status.step_index + 1} "
        f"weights stable {weights.stable}% / canary {weights.canary}%  {status.message}",
    )
    if report.problem:
        console.print(f"  [yellow]{report.problem}[/]")
    if report.decision is None:
        return
    colours = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.INCONCLUSIVE: "yellow"}
    for reason in report.decision.reasons:
        unit = "ms" if reason.metric.startswith("latency") else ""
        console.print(
            f"  [{colours[reason.verdict]}]{reason.verdict.value:<12}[/] {reason.metric:<11} "
            f"canary {_fmt(reason.canary, unit)}  stable {_fmt(reason.stable, unit)}  "
            f"threshold {_fmt(reason.threshold, unit)}  {reason.message}",
        )
    if report.sample is not None:
        c = report.sample.canary
        s = report.sample.stable
        console.print(
            f"  samples: canary {c.labeled:.0f} labeled ({c.pending_labels:.0f} pending) / "
            f"{c.requests:.0f} requests, stable {s.labeled:.0f} ({s.pending_labels:.0f} pending) "
            f"/ {s.requests:.0f}",
        )


def _warn_about_capacity(rollout: ModelRollout, report: Path, current_rps: float | None) -> None:
    """Warnings, not refusals: the measured capacity is one load test's, on one node, and the
    autoscaler may add canary replicas before a step; a person decides."""
    from mlcanary.loadtest.rollout_capacity import capacity_warnings, read_capacity

    if current_rps is None:
        raise typer.BadParameter("needed with --capacity", param_hint="--current-rps")
    try:
        warnings = capacity_warnings(rollout.spec, read_capacity(report), current_rps)
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)
    for warning in warnings:
        console.print(f"[yellow]capacity warning:[/] {warning}")


@rollout_app.command("run")
def run(
    file: Annotated[Path, typer.Option("--file", "-f", help="The ModelRollout YAML.")],
    state_dir: StateDir = None,
    timeline: Annotated[
        Path | None, typer.Option(help="Append one JSON line per tick to this file.")
    ] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(help="The canary's `mlcanary bench capacity` report: warns of steps past it."),
    ] = None,
    current_rps: Annotated[
        float | None,
        typer.Option(help="The traffic now served, requests/s (with --capacity).", min=0),
    ] = None,
) -> None:
    """Shift traffic through the steps, analysing each; ends promoted (0) or rolled back (3)."""
    logging.basicConfig(level=logging.WARNING)
    rollout = read_spec(file)
    if capacity is not None:
        _warn_about_capacity(rollout, capacity, current_rps)
    platform = LocalPlatform(_state_dir(state_dir), say=console.print)
    from mlcanary.rollout.workloads import WorkloadNotReadyError

    try:
        controller = platform.controller(rollout, timeline)
    except (WorkloadNotReadyError, RuntimeError, ValueError) as exc:
        fail(f"could not start the platform, no traffic was moved: {exc}")
    try:
        final = controller.run(on_tick=show_tick)
    finally:
        controller.close()
    console.print(f"[bold]{rollout.metadata.name}: {final.phase.value}[/] — {final.message}")
    if platform.notifications is not None:
        for line in platform.notifications.lines(rollout.metadata.name):
            console.print(f"notifications: {line}")
    raise typer.Exit(int(_EXIT.get(final.phase, ExitCode.ERROR)))


@rollout_app.command("status")
def status(
    name: Annotated[str | None, typer.Argument(help="One rollout; all when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Phase, step, weights and the last decisions of each rollout."""
    store = LocalPlatform(_state_dir(state_dir)).store
    names = [name] if name is not None else store.names()
    found = {n: stored.status for n in names if (stored := store.load(n)) is not None}
    if name is not None and not found:
        fail(f"no rollout named {name} in {_state_dir(state_dir)}", ExitCode.INVALID)
    if as_json:
        typer.echo(json.dumps({n: s.model_dump(mode="json") for n, s in found.items()}, indent=2))
        return
    if not found:
        console.print("no rollouts yet")
    for rollout_name, current in found.items():
        console.print(
            f"[bold]{rollout_name}[/]: {current.phase.value}, step {current.step_index + 1}, "
            f"{current.stable_version} {current.weights.stable}% / "
            f"{current.canary_version} {current.weights.canary}%",
        )
        console.print(f"  {current.message}")
        if current.pending_labels:
            pending = ", ".join(f"{v} {n:,.0f}" for v, n in current.pending_labels.items())
            console.print(f"  labels pending this step: {pending}")
        for record in current.history[-5:]:
            console.print(
                f"  {record.at:%H:%M:%S} {record.action.value:<8} {record.message}",
            )


def _command(name: str, command: Command, state_dir: Path | None) -> None:
    store = LocalPlatform(_state_dir(state_dir)).store
    if store.load(name) is None:
        fail(f"no rollout named {name} in {_state_dir(state_dir)}", ExitCode.INVALID)
    store.request(name, command)
    console.print(f"{command.value} requested for {name}; the controller applies it next tick")


@rollout_app.command("promote")
def promote(name: str, state_dir: StateDir = None) -> None:
    """Send all traffic to the canary now, whatever the analysis says."""
    _command(name, Command.PROMOTE, state_dir)


@rollout_app.command("abort")
def abort(name: str, state_dir: StateDir = None) -> None:
    """Roll back now: stable gets all traffic."""
    _command(name, Command.ABORT, state_dir)


@rollout_app.command("pause")
def pause(name: str, state_dir: StateDir = None) -> None:
    """Keep the weights and stop analysing until resumed."""
    _command(name, Command.PAUSE, state_dir)


@rollout_app.command("resume")
def resume(name: str, state_dir: StateDir = None) -> None:
    """Carry on analysing a paused rollout."""
    _command(name, Command.RESUME, state_dir)


@platform_app.command("status")
def platform_status(state_dir: StateDir = None) -> None:
    """The processes the local platform runs."""
    registry = LocalPlatform(_state_dir(state_dir)).registry
    for process_name in registry.names():
        entry = registry.get(process_name)
        state = f"{entry.url} (pid {entry.pid})" if entry else "not running"
        console.print(f"{process_name}: {state}")


@platform_app.command("down")
def platform_down(state_dir: StateDir = None) -> None:
    """Stop every service, the router and Prometheus."""
    LocalPlatform(_state_dir(state_dir)).down()
    console.print("stopped")
