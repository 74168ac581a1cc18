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
from mlcanary.lazy_group import LazyCommand, LazyGroup

app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    help="Serve ML model versions and promote new ones safely.",
)

# Imported when invoked: `mlcanary --help` and the light commands pay for none of the heavy
# dependencies the others need (see mlcanary/lazy_group.py). The help is what the listing shows.
LazyGroup.lazy = {
    "models": LazyCommand(
        "mlcanary.models.cli:models_app",
        "Register, import, list and inspect model versions.",
        "serve",
    ),
    "rollout": LazyCommand(
        "mlcanary.local.cli:rollout_app", "Run, watch and steer canary rollouts.", "local"
    ),
    "router": LazyCommand(
        "mlcanary.local.router.cli:router_app",
        "The local router (HAProxy) that splits traffic between model versions.",
    ),
    "platform": LazyCommand(
        "mlcanary.local.cli:platform_app", "The local services, router and Prometheus.", "local"
    ),
    "k8s": LazyCommand(
        "mlcanary.k8s.cli:k8s_app", "Kubernetes manifests: render and validate.", "k8s"
    ),
    "controller": LazyCommand(
        "mlcanary.k8s.controller_cli:controller",
        "Run the rollout controller: watch ModelRollouts, move traffic, roll back on regression.",
        "controller",
    ),
    "gpu": LazyCommand("mlcanary.gpu.cli:gpu_app", "GPUs visible through NVML (nvidia-ml-py)."),
    "build": LazyCommand(
        "mlcanary.serving.image.cli:build_command",
        "Build a model version's container image, its Bento inside, or the controller's.",
        "serve",
    ),
    "bench": LazyCommand(
        "mlcanary.loadtest.cli:bench_app",
        "Capacity with Locust: search, compare, check a rollout.",
        "bench",
    ),
}


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
