"""The ``mlcanary build`` command; the work is in ``mlcanary.serving.image.builder``."""

from __future__ import annotations

from typing import Annotated

import typer

from mlcanary.console import ExitCode, fail
from mlcanary.models.digest import ArtifactIntegrityError
from mlcanary.serving.image.builder import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_CUDA,
    ImageSpec,
    build_image,
)
from mlcanary.serving.image.docker import DockerError
from mlcanary.serving.image.wheelhouse import WheelhouseError

__all__ = ["build_command"]


def build_command(
    *,
    model: Annotated[str | None, typer.Option(help="The version to package, NAME:VERSION.")] = None,
    controller: Annotated[
        bool,
        typer.Option(
            "--controller",
            help="The rollout controller's image instead: no model, no serving stack.",
        ),
    ] = False,
    gpu: Annotated[
        bool,
        typer.Option(
            "--gpu", help="NVIDIA runtime settings, and torch's CUDA build for torch versions."
        ),
    ] = False,
    cuda: Annotated[
        str | None,
        typer.Option(
            help=f"With --gpu: the CUDA build of torch, pypi (PyPI's own wheel) or cuNNN "
            f"from PyTorch's index, e.g. cu126 for older drivers (default {DEFAULT_CUDA})."
        ),
    ] = None,
    base_image: Annotated[
        str | None, typer.Option(help=f"Base image (default {DEFAULT_BASE_IMAGE}).")
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            help="Image name (default mlcanary/NAME:VERSION[-gpu], mlcanary/controller:RELEASE)."
        ),
    ] = None,
    push: Annotated[
        str | None, typer.Option(help="Also push to this repository, REGISTRY/REPO.")
    ] = None,
) -> None:
    """Build a model version's container image, its Bento inside, or the controller's."""
    try:
        spec = ImageSpec(
            model=model,
            gpu=gpu,
            controller=controller,
            cuda=cuda,
            base_image=base_image,
            tag=tag,
            push=push,
        )
        built = build_image(spec, on_step=lambda step: typer.echo(f"-> {step}"))
    except (ValueError, LookupError, ArtifactIntegrityError) as exc:
        fail(str(exc), ExitCode.INVALID)
    except (DockerError, WheelhouseError) as exc:
        fail(str(exc))
    source = f" from bento {built.bento}" if built.bento else ""
    typer.echo(f"built {built.tag} ({built.image_id}){source}")
    if built.pushed:
        typer.echo(f"pushed {built.pushed}")
