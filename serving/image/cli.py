"""The ``mlcanary build`` command; the work is in ``mlcanary.serving.image.builder``."""

from __future__ import annotations

from typing import Annotated

import typer

from mlcanary.console import ExitCode, fail
from mlcanary.models.digest import ArtifactIntegrityError
from mlcanary.serving.image.builder import DEFAULT_BASE_IMAGES, ImageSpec, build_image
from mlcanary.serving.image.docker import DockerError
from mlcanary.serving.image.wheelhouse import WheelhouseError

__all__ = ["build_command"]


def build_command(
    model: Annotated[str, typer.Option(help="The version to package, NAME:VERSION.")],
    gpu: Annotated[
        bool, typer.Option("--gpu", help="CUDA base and NVIDIA runtime settings.")
    ] = False,
    base_image: Annotated[
        str | None,
        typer.Option(
            help=f"Base image (default {DEFAULT_BASE_IMAGES['cpu']}, "
            f"with --gpu {DEFAULT_BASE_IMAGES['gpu']})."
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option(help="Image name (default mlcanary/NAME:VERSION[-gpu]).")
    ] = None,
    push: Annotated[
        str | None, typer.Option(help="Also push to this repository, REGISTRY/REPO.")
    ] = None,
) -> None:
    """Build a Bento for one model version and a container image from it."""
    spec = ImageSpec(model=model, gpu=gpu, base_image=base_image, tag=tag, push=push)
    try:
        built = build_image(spec, on_step=lambda step: typer.echo(f"-> {step}"))
    except (ValueError, LookupError, ArtifactIntegrityError) as exc:
        fail(str(exc), ExitCode.INVALID)
    except (DockerError, WheelhouseError) as exc:
        fail(str(exc))
    typer.echo(f"built {built.tag} ({built.image_id}) from bento {built.bento}")
    if built.pushed:
        typer.echo(f"pushed {built.pushed}")
