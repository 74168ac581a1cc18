"""The ``mlcanary`` command line.

typer, because commands are plain typed functions whose help comes from their signatures; rich
for tables and progress. Commands here only parse arguments and print: the work lives in the
packages they call.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlcanary.console import ExitCode, console, fail

app = typer.Typer(no_args_is_help=True, help="Serve ML model versions and promote new ones safely.")


def _mount_subcommands() -> None:
    from mlcanary.gpu.cli import gpu_app
    from mlcanary.k8s.cli import k8s_app
    from mlcanary.k8s.controller_cli import controller
    from mlcanary.loadtest.cli import bench_app
    from mlcanary.local.cli import platform_app, rollout_app
    from mlcanary.local.router.cli import router_app
    from mlcanary.models.cli import models_app
    from mlcanary.serving.image.cli import build_command

    app.add_typer(models_app, name="models")
    app.add_typer(rollout_app, name="rollout")
    app.add_typer(router_app, name="router")
    app.add_typer(platform_app, name="platform")
    app.add_typer(k8s_app, name="k8s")
    app.command("controller")(controller)
    app.add_typer(gpu_app, name="gpu")
    app.command("build")(build_command)
    app.add_typer(bench_app, name="bench")


_mount_subcommands()


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="The version to serve, NAME:VERSION.")],
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Serve one model version with BentoML, whatever its format."""
    from mlcanary.models.digest import ArtifactIntegrityError
    from mlcanary.serving.launcher import ServeOptions, preflight, serve_command, serve_environment

    options = ServeOptions(model=model, port=port, host=host, workers=workers, device=device)
    env = serve_environment(options)
    try:
        preflight(options, env)
    except (ValueError, LookupError, ArtifactIntegrityError) as exc:
        fail(str(exc), ExitCode.INVALID)
    command = serve_command(options)
    sys.stdout.flush()
    os.execvpe(command[0], command, env)  # noqa: S606 - replaces this process on purpose


@app.command()
def demo(
    fast: Annotated[bool, typer.Option(help="Short analysis intervals, for tests.")] = False,
    users: Annotated[int, typer.Option(min=1, help="Concurrent Locust users.")] = 8,
    workdir: Annotated[Path, typer.Option(help="Report, timeline, logs.")] = Path("reports/demo"),
) -> None:
    """Two rollouts end to end: a better canary promoted, a less accurate one rolled back."""
    from mlcanary.demo import run_demo
    from mlcanary.local.router.haproxy import MISSING_HAPROXY, haproxy_binary

    if haproxy_binary() is None:
        fail(MISSING_HAPROXY)  # before the minutes of training, not after
    raise typer.Exit(run_demo(workdir, console, fast=fast, users=users))


if __name__ == "__main__":
    app()
