"""``mlcanary models``: register, import, list, show and delete model versions.

Commands parse and print; the work is in `mlcanary.models.api` and `mlcanary.models.registry`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from mlcanary.console import ExitCode, console, fail

__all__ = ["models_app"]

models_app = typer.Typer(
    no_args_is_help=True, help="Register, import, list and inspect model versions."
)


def _holdout_text(holdout: dict[str, float]) -> str:
    return ", ".join(f"{metric} {value:.4g}" for metric, value in holdout.items()) or "-"


@models_app.command("train")
def train(
    version: Annotated[
        list[str] | None, typer.Option("--version", "-v", help="Train only these versions.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Retrain versions already in the store.")] = False,
) -> None:
    """Train the digits reference versions and register them."""
    from mlcanary.models.reference.train import train_reference_versions

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
        console.print(f"{v.ref}  {v.format:<12} {_holdout_text(dict(v.holdout))}  {state}")


def _json_option(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{flag}: not JSON: {exc}", ExitCode.INVALID)


def _schema(path: Path | None) -> Any:
    if path is None:
        return None
    from mlcanary.models.schema import InputSchema

    try:
        return TypeAdapter(InputSchema).validate_json(path.read_bytes())
    except OSError as exc:
        fail(f"--schema: cannot read {path}: {exc.strerror}", ExitCode.INVALID)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        fail(f"--schema: {path}: {where}: {problem['msg']}", ExitCode.INVALID)


@models_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A .skops, .onnx, .pt2 or .safetensors file.")],
    *,
    name: Annotated[str, typer.Option(help="The model's name.")],
    version: Annotated[str, typer.Option(help="The version's name.")],
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format", help="skops, onnx, torch-export or safetensors (default: by suffix)."
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="classification or regression, where the model cannot say.")
    ] = None,
    schema: Annotated[
        Path | None, typer.Option(help="The input schema, JSON (see docs/models.md).")
    ] = None,
    example: Annotated[
        Path | None,
        typer.Option(help="Rows of the real input (CSV, JSONL or Parquet): gives the schema."),
    ] = None,
    holdout: Annotated[
        Path | None, typer.Option(help="Labeled rows to score (CSV, JSONL or Parquet).")
    ] = None,
    label_column: Annotated[
        str, typer.Option(help="The label column of --holdout and --example.")
    ] = "label",
    classes: Annotated[
        str | None,
        typer.Option(help='The class labels as JSON, in the model\'s order: \'["no", "yes"]\'.'),
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option("--trust", help="skops: a type to trust beyond the defaults (repeatable)."),
    ] = None,
    architecture: Annotated[
        str | None, typer.Option(help="safetensors: the network's class, package.module:Class.")
    ] = None,
    config: Annotated[
        str | None, typer.Option(help="safetensors: the class's arguments, as a JSON object.")
    ] = None,
    role: Annotated[str, typer.Option(help="A word on what this version is for.")] = "",
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
) -> None:
    """Register an artifact made elsewhere, read without running code from it."""
    from mlcanary.models.api import RegistrationError, import_artifact
    from mlcanary.models.data import features_and_labels, read_table
    from mlcanary.models.formats.base import FormatError
    from mlcanary.models.registry import VersionExistsError

    try:
        example_rows = None
        if example is not None:
            table = read_table(example)
            example_rows = table.drop(columns=[label_column], errors="ignore")
        scored = features_and_labels(read_table(holdout), label_column) if holdout else None
        registered = import_artifact(
            file,
            name=name,
            version=version,
            format=format_name,
            task=task,
            example=example_rows,
            schema=_schema(schema),
            holdout=scored,
            classes=_json_option(classes, "--classes"),
            trust=trust or (),
            architecture=architecture,
            config=_json_option(config, "--config"),
            role=role,
            description=description,
        )
    except (RegistrationError, FormatError, VersionExistsError, ValueError) as exc:
        fail(str(exc), ExitCode.INVALID)
    console.print(
        f"registered {registered.ref} ({registered.format}, {registered.task.value}): "
        f"{registered.schema.describe()}; holdout {_holdout_text(dict(registered.holdout))}"
    )


@models_app.command("list")
def list_command(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every registered version: format, task, holdout score, size and digest."""
    from mlcanary.models.registry import list_versions

    versions = list_versions(name)
    if as_json:
        typer.echo(json.dumps([v.summary() for v in versions], indent=2))
        return
    if not versions:
        console.print("no model versions registered; see `mlcanary models import --help`")
        return
    table = Table("model", "version", "format", "task", "holdout", "role", "size", "sha256")
    for v in versions:
        table.add_row(
            v.ref.name,
            v.ref.version,
            v.format,
            v.task.value,
            _holdout_text(dict(v.holdout)),
            v.role,
            f"{v.size_bytes / 1024:.0f} KiB",
            v.digest[:16],
        )
    console.print(table)


def _ref(text: str) -> Any:
    from mlcanary.models.registry import ModelRef

    try:
        return ModelRef.parse(text)
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)


@models_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME:VERSION")]) -> None:
    """Everything recorded of one version, as JSON: schema, classes, holdout score, digest."""
    from mlcanary.models.registry import VersionNotFoundError, get_version

    try:
        version = get_version(_ref(ref))
    except VersionNotFoundError as exc:
        fail(str(exc), ExitCode.INVALID)
    typer.echo(json.dumps(version.summary(), indent=2))


@models_app.command("delete")
def delete(ref: Annotated[str, typer.Argument(help="NAME:VERSION")]) -> None:
    """Remove a version from the model store."""
    from mlcanary.models.registry import VersionNotFoundError, delete_version

    model_ref = _ref(ref)
    try:
        delete_version(model_ref)
    except VersionNotFoundError as exc:
        fail(str(exc), ExitCode.INVALID)
    console.print(f"deleted {model_ref}")
