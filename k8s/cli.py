"""``mlcanary k8s``: render a rollout's manifests, print the CRD, validate any manifests.

Exit codes (`ExitCode`): OK; ERROR when a manifest is invalid (``validate``), or a rendered
object failed validation (a renderer defect: nothing is printed); INVALID for bad input (a spec,
a flag or a file that cannot be read), each problem naming its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from mlcanary.console import ExitCode, err, fail, read_rollout
from mlcanary.k8s.crd import crd
from mlcanary.k8s.render import (
    InvalidManifestError,
    RenderError,
    RenderOptions,
    render,
    to_yaml,
    write_kustomize,
)
from mlcanary.k8s.render.options import AutoscaleMetric
from mlcanary.k8s.validation import KUBERNETES_VERSION, validate_object

__all__ = ["k8s_app"]

k8s_app = typer.Typer(no_args_is_help=True, help="Kubernetes manifests: render and validate.")


@k8s_app.command("render")
def render_command(
    *,
    file: Annotated[Path, typer.Option("--file", "-f", help="The ModelRollout YAML.")],
    gpu: Annotated[
        bool, typer.Option(help="GPU Deployments (nvidia.com/gpu), VERSION-gpu images.")
    ] = False,
    image_repo: Annotated[
        str | None,
        typer.Option(
            help="Where `mlcanary build --push REGISTRY/REPO` pushed the versions: each runs "
            "REGISTRY/REPO:VERSION[-gpu] (default mlcanary/MODEL:VERSION[-gpu], the local tags)."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Namespace (default: the spec's metadata.namespace, else default)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write a kustomize tree (OUT/base) instead of printing.")
    ] = None,
    gateway: Annotated[str, typer.Option(help="gateway-api: the Gateway's name.")] = "mlcanary",
    gateway_namespace: Annotated[
        str | None, typer.Option(help="gateway-api: the Gateway's namespace.")
    ] = None,
    replicas: Annotated[int, typer.Option(help="Pods per version: the autoscaler's minimum.")] = 2,
    max_replicas: Annotated[int, typer.Option(help="Autoscaler maximum.")] = 10,
    autoscale_metric: Annotated[
        str, typer.Option(help="cpu, or requests (per-pod request rate, custom metric).")
    ] = "cpu",
    controller_image: Annotated[
        str | None,
        typer.Option(help="The controller's image (default: the stable version's image)."),
    ] = None,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            help="A Redis of your own for the feedback ledger (redis://HOST:PORT/DB); "
            "default: one Redis rendered beside the model."
        ),
    ] = None,
) -> None:
    """Everything a cluster needs for one rollout, validated, as YAML or a kustomize tree."""
    rollout = read_rollout(file)
    if autoscale_metric not in ("cpu", "requests"):
        fail([f"--autoscale-metric: {autoscale_metric!r} is not cpu or requests"], ExitCode.INVALID)
    metric: AutoscaleMetric = "cpu" if autoscale_metric == "cpu" else "requests"
    try:
        options = RenderOptions(
            image_repo=image_repo,
            gateway=gateway,
            gateway_namespace=gateway_namespace,
            replicas=replicas,
            max_replicas=max_replicas,
            autoscale_metric=metric,
            controller_image=controller_image,
            ledger_url=ledger_url,
        )
    except RenderError as exc:  # problems name the field: spell it as the flag
        flags = [
            f"--{field.replace('_', '-')}:{rest}"
            for field, _, rest in (problem.partition(":") for problem in exc.problems)
        ]
        fail(flags, ExitCode.INVALID)
    try:
        objects = render(rollout, gpu=gpu, namespace=namespace, options=options)
    except RenderError as exc:
        fail(exc.problems, ExitCode.INVALID)
    except InvalidManifestError as exc:
        fail(["a rendered object is invalid:", *exc.problems], ExitCode.ERROR)
    if out is None:
        typer.echo(to_yaml(objects), nl=False)
        return
    try:
        written = write_kustomize(objects, out)
    except (OSError, FileExistsError) as exc:
        fail([f"--out: {exc}"], ExitCode.INVALID)
    err.print(f"wrote {len(written)} files under {out / 'base'}")


@k8s_app.command("crd")
def crd_command() -> None:
    """The ModelRollout CRD alone: apply it first, so that the API server knows the kind."""
    typer.echo(to_yaml([crd()]), nl=False)


def _documents(path: Path) -> list[Any]:
    text = path.read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@k8s_app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="YAML manifests (multi-document).")],
) -> None:
    """Check manifests against the Kubernetes, Gateway API, Istio, prometheus-operator and
    ModelRollout schemas, offline; exit 1 listing every problem."""
    problems: list[str] = []
    count = 0
    for path in files:
        try:
            documents = _documents(path)
        except OSError as exc:
            fail([f"{path}: cannot read: {exc.strerror}"], ExitCode.INVALID)
        except yaml.YAMLError as exc:
            fail([f"{path}: not valid YAML: {exc}"], ExitCode.INVALID)
        for index, document in enumerate(documents):
            count += 1
            if not isinstance(document, dict):
                problems.append(f"{path}: document {index + 1}: not a mapping")
                continue
            problems += [f"{path}: {problem}" for problem in validate_object(document)]
    if problems:
        fail(problems, ExitCode.ERROR)
    err.print(f"{count} objects valid (Kubernetes {KUBERNETES_VERSION} schemas and CRDs)")
