"""The ``mlcanary`` command line.

typer, because commands are plain typed functions whose help comes from their signatures; rich
for tables and progress. Commands here only parse arguments and print: the work lives in the
packages they call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlcanary.console import ExitCode, console, fail

app = typer.Typer(no_args_is_help=True, help="Serve ML model versions and promote new ones safely.")
models_app = typer.Typer(no_args_is_help=True, help="Train, list and inspect model versions.")
app.add_typer(models_app, name="models")


def _mount_subcommands() -> None:
    from mlcanary.gpu.cli import gpu_app
    from mlcanary.k8s.cli import k8s_app
    from mlcanary.k8s.controller_cli import controller
    from mlcanary.loadtest.cli import bench_app
    from mlcanary.local.cli import platform_app, rollout_app
    from mlcanary.local.router.cli import router_app
    from mlcanary.serving.image.cli import build_command

    app.add_typer(rollout_app, name="rollout")
    app.add_typer(router_app, name="router")
    app.add_typer(platform_app, name="platform")
    app.add_typer(k8s_app, name="k8s")
    app.command("controller")(controller)
    app.add_typer(gpu_app, name="gpu")
    app.command("build")(build_command)
    app.add_typer(bench_app, name="bench")


_mount_subcommands()


@models_app.command("train")
def models_train(
    version: Annotated[
        list[str] | None, typer.Option("--version", "-v", help="Train only these versions.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Retrain versions already in the store.")] = False,
) -> None:
    """Train the reference versions of the digits model and register them."""
    from mlcanary.models.train import train_reference_versions

    try:
        outcomes = train_reference_versions(
            version,
            force=force,
            on_start=lambda r: console.print(f"training {r.version} ({r.description}) ..."),
        )
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)
    for outcome in outcomes:
        v = outcome.version
        state = "trained" if outcome.trained else "already registered"
        console.print(
            f"{v.ref}  {v.framework:<8} holdout accuracy {v.holdout_accuracy:.4f}  {state}"
        )


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show every registered version: framework, holdout accuracy, size and digest."""
    from mlcanary.models.registry import list_versions

    versions = list_versions(name)
    if as_json:
        rows = [
            {
                "model": v.ref.name,
                "version": v.ref.version,
                "framework": v.framework,
                "role": v.role,
                "holdout_accuracy": v.holdout_accuracy,
                "size_bytes": v.size_bytes,
                "sha256": v.digest,
                "created": v.created.isoformat(),
            }
            for v in versions
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not versions:
        console.print("no model versions registered; run `mlcanary models train`")
        return
    table = Table("model", "version", "framework", "role", "holdout acc", "size", "sha256")
    for v in versions:
        table.add_row(
            v.ref.name,
            v.ref.version,
            v.framework,
            v.role,
            f"{v.holdout_accuracy:.4f}",
            f"{v.size_bytes / 1024:.0f} KiB",
            v.digest[:16],
        )
    console.print(table)


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="The version to serve, NAME:VERSION.")],
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Serve one model version with BentoML (sklearn and torch alike)."""
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

    raise typer.Exit(run_demo(workdir, console, fast=fast, users=users))


if __name__ == "__main__":
    app()
