"""Rollouts one after the other on the local platform, under labeled Locust traffic: what
``make demo`` runs for the digits versions and each example runs for its own model.

The platform (services, router, Prometheus) is started for the first rollout and kept for the
next, so each rollout starts from the stable version the previous one left serving; Locust's
traffic (predictions, then their true labels as feedback) flows through the router the whole
time, and a timeline of every tick is written, from which the report and plot are drawn.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

import mlcanary.loadtest
from mlcanary.local.cli import show_tick
from mlcanary.local.platform import LocalPlatform
from mlcanary.local.report import group_by_rollout, read_timeline, write_report
from mlcanary.rollout.spec import ModelRollout, parse_spec
from mlcanary.rollout.status import Phase
from mlcanary.serving.launcher import free_port

__all__ = ["Expected", "Traffic", "run_rollouts", "spec_for_this_machine"]

LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "traffic" / "locustfile.py"


@dataclass(frozen=True)
class Traffic:
    """The labeled load: Locust users, and the rows they send (the digits holdout by default)."""

    users: int = 8
    data: Path | None = None
    label_column: str = "label"
    feedback_delay_s: float = 0.0


@dataclass(frozen=True)
class Expected:
    """A rollout to run, and the phase it should end in."""

    spec: Path
    phase: Phase


def spec_for_this_machine(
    path: Path,
    router: str,
    prometheus: str,
    fast: bool,
    analysis: Mapping[str, object] | None = None,
) -> ModelRollout:
    """A spec file with this run's free ports; ``fast`` shortens the analysis interval, and
    `analysis` sets fields of the spec's analysis."""
    document = yaml.safe_load(path.read_text())
    document["spec"]["router"]["address"] = router
    document["spec"]["metrics"]["address"] = prometheus
    if fast:
        document["spec"]["analysis"].update(interval="2s", maxDuration="6m")
    document["spec"]["analysis"].update(analysis or {})
    return parse_spec(document)


@contextlib.contextmanager
def _locust(url: str, traffic: Traffic, workdir: Path, max_s: int) -> Iterator[None]:
    """Labeled traffic for as long as the block runs (and never longer than `max_s`)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "-u", str(traffic.users), "-r", str(traffic.users), "-t", f"{max_s}s", "--only-summary",
        "--csv", str(workdir / "locust"), "--loglevel", "WARNING",
        "--feedback-delay-s", str(traffic.feedback_delay_s),
    ]  # fmt: skip
    if traffic.data is not None:
        command += ["--data", str(traffic.data.resolve()), "--label-column", traffic.label_column]
    with (workdir / "locust.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_rollouts(
    rollouts: Sequence[Expected],
    workdir: Path,
    console: Console,
    *,
    traffic: Traffic,
    fast: bool = False,
    analysis: Mapping[str, object] | None = None,
) -> int:
    """Run each rollout to its end; 0 when every one ended as expected, 1 otherwise.
    `analysis` sets fields of every spec's analysis (a labelDelay to match the traffic's)."""
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)
    timeline = workdir / "timeline.jsonl"
    timeline.unlink(missing_ok=True)
    platform = LocalPlatform(state, say=console.print)
    router = f"http://127.0.0.1:{free_port()}"
    prometheus = f"http://127.0.0.1:{free_port()}"
    outcomes: dict[str, Phase] = {}
    wanted = {}
    try:
        first = spec_for_this_machine(rollouts[0].spec, router, prometheus, fast, analysis)
        console.rule(
            f"start the platform: stable {first.spec.model}:{first.spec.stable.version}, "
            "router, Prometheus"
        )
        controller = platform.controller(first, timeline)
        with _locust(router, traffic, workdir, max_s=1800):
            for index, expected in enumerate(rollouts):
                rollout = (
                    first
                    if index == 0
                    else spec_for_this_machine(expected.spec, router, prometheus, fast, analysis)
                )
                spec = rollout.spec
                console.rule(
                    f"rollout {rollout.metadata.name}: {spec.stable.version} -> "
                    f"{spec.canary.version}, steps {spec.steps} (expected: {expected.phase.value})"
                )
                if index > 0:
                    controller = platform.controller(rollout, timeline)
                try:
                    final = controller.run(on_tick=show_tick)
                finally:
                    controller.close()
                outcomes[rollout.metadata.name] = final.phase
                wanted[rollout.metadata.name] = expected.phase
                console.print(
                    f"[bold]{rollout.metadata.name}: {final.phase.value}[/] {final.message}"
                )
    finally:
        console.rule("stop the platform")
        platform.down()
    md, png = write_report(group_by_rollout(read_timeline(timeline)), workdir)
    console.print(f"report: {md}\nplot:   {png}\nlogs:   {state / 'processes'}/")
    if outcomes != wanted:
        console.print(f"[red]unexpected outcome: {outcomes}, expected {wanted}[/]")
        return 1
    return 0
