"""The single-machine demo: two real rollouts, end to end.

Trains the reference versions, serves the stable one behind the local router, starts Prometheus
(or scrapes directly when it is not installed), drives labeled Locust traffic through the
router, and runs two rollouts: a better canary that is promoted 10% -> 100%, then a less
accurate one that is rolled back. A markdown report and a PNG plot are written at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml
from rich.console import Console

import mlcanary.loadtest
import mlcanary.rollout
from mlcanary.local.cli import show_tick
from mlcanary.local.platform import LocalPlatform
from mlcanary.local.report import group_by_rollout, read_timeline, write_report
from mlcanary.local.router.haproxy import MISSING_HAPROXY, haproxy_binary
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.rollout.spec import ModelRollout
from mlcanary.rollout.status import Phase
from mlcanary.serving.launcher import free_port

__all__ = ["EXAMPLES", "run_demo"]

LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "traffic" / "locustfile.py"
EXAMPLES = Path(mlcanary.rollout.__file__).parent / "examples"
EXPECTED = {"better-canary.yaml": Phase.SUCCEEDED, "worse-canary.yaml": Phase.ROLLED_BACK}


def _spec(name: str, router: str, prometheus: str, fast: bool) -> ModelRollout:
    document = yaml.safe_load((EXAMPLES / name).read_text())
    document["spec"]["router"]["address"] = router
    document["spec"]["metrics"]["address"] = prometheus
    if fast:
        document["spec"]["analysis"].update(interval="2s", maxDuration="6m")
    return ModelRollout.model_validate(document)


@contextlib.contextmanager
def _locust(url: str, users: int, workdir: Path, max_s: int) -> Iterator[None]:
    """Labeled traffic for as long as the block runs (and never longer than `max_s`)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "-u", str(users), "-r", str(users), "-t", f"{max_s}s", "--only-summary",
        "--csv", str(workdir / "locust"), "--loglevel", "WARNING",
    ]  # fmt: skip
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


def run_demo(workdir: Path, console: Console, *, fast: bool = False, users: int = 8) -> int:
    if haproxy_binary() is None:
        console.print(f"[red]{MISSING_HAPROXY}[/]")
        return 1
    workdir.mkdir(parents=True, exist_ok=True)
    console.rule("1. train the reference versions")
    for outcome in train_reference_versions():
        v = outcome.version
        console.print(
            f"{v.ref}: {v.description} ({v.role}), holdout accuracy {v.holdout['accuracy']:.4f}"
        )
    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)
    timeline = workdir / "timeline.jsonl"
    timeline.unlink(missing_ok=True)
    platform = LocalPlatform(state, say=console.print)
    router = f"http://127.0.0.1:{free_port()}"
    prometheus = f"http://127.0.0.1:{free_port()}"
    outcomes: dict[str, Phase] = {}
    wanted: dict[str, Phase] = {}
    try:
        first = _spec("better-canary.yaml", router, prometheus, fast)
        console.rule("2. start the platform: stable v1, router, Prometheus, canary v2")
        controller = platform.controller(first, timeline)
        with _locust(router, users, workdir, max_s=1800):
            for index, (name, expected) in enumerate(EXPECTED.items()):
                rollout = first if index == 0 else _spec(name, router, prometheus, fast)
                spec = rollout.spec
                console.rule(
                    f"3. rollout {rollout.metadata.name}: {spec.stable.version} -> "
                    f"{spec.canary.version}, steps {spec.steps} (expected: {expected.value})"
                )
                if index > 0:
                    controller = platform.controller(rollout, timeline)
                try:
                    final = controller.run(on_tick=show_tick)
                finally:
                    controller.close()
                outcomes[rollout.metadata.name] = final.phase
                wanted[rollout.metadata.name] = expected
                console.print(
                    f"[bold]{rollout.metadata.name}: {final.phase.value}[/] {final.message}"
                )
    finally:
        console.rule("4. stop the platform")
        platform.down()
    md, png = write_report(group_by_rollout(read_timeline(timeline)), workdir)
    console.print(f"report: {md}\nplot:   {png}\nlogs:   {state / 'processes'}/")
    if outcomes != wanted:
        console.print(f"[red]unexpected outcome: {outcomes}, expected {wanted}[/]")
        return 1
    console.print("[green]as expected: the better canary was promoted, the worse rolled back[/]")
    return 0
