"""``mlcanary build``: one model version as a container image, optionally pushed to a registry.

The image is built from ``Dockerfile.gpu`` rather than with ``bentoml containerize``: that
command renders its own Dockerfile which installs packages from the network during the build
and needs a registry to pull its base images and, for BentoML's default, buildx; ours installs
a wheelhouse made here with ``--no-index``, leaves no build tools in the final stage, runs as a
non-root user on a read-only root filesystem, and builds on any base image given, including
one made locally without a registry. Everything that can be refused (the version, the names,
the daemon) is checked before anything is built, and the image is tagged only once the build
has succeeded, so a failure leaves no half-built tag behind.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlcanary.models.digest import verify_sha256
from mlcanary.models.registry import ModelRef, ModelVersion, get_version
from mlcanary.serving.image.bento import export_bento
from mlcanary.serving.image.docker import DockerCli, DockerError
from mlcanary.serving.image.names import (
    has_tag,
    repository_problem,
    tag_problem,
    version_image,
    version_tag,
)
from mlcanary.serving.image.wheelhouse import build_wheelhouse, project_root
from mlcanary.settings import BuildSettings, env_name

__all__ = [
    "DEFAULT_BASE_IMAGES",
    "BuiltImage",
    "ImageSpec",
    "build_args",
    "build_image",
    "image_cache_dir",
    "image_tag",
    "push_target",
]

DEFAULT_BASE_IMAGES = {
    "gpu": "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    "cpu": "python:3.11-slim",
}


@dataclass(frozen=True)
class ImageSpec:
    model: str
    gpu: bool = False
    base_image: str | None = None
    tag: str | None = None
    push: str | None = None


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    tag: str
    bento: str
    pushed: str | None = None


def image_cache_dir() -> Path:
    return BuildSettings.from_env().image_cache / "wheelhouse"


def image_tag(spec: ImageSpec, ref: ModelRef) -> str:
    if spec.tag is None:
        return version_image(ref.name, ref.version, gpu=spec.gpu)
    repository, tag = spec.tag, None
    if has_tag(spec.tag):
        repository, _, tag = spec.tag.rpartition(":")
    if repository_problem(repository) or (tag is not None and tag_problem(tag)):
        raise ValueError(f"--tag {spec.tag!r} is not an image name like REPOSITORY[:TAG]")
    return spec.tag if tag is not None else f"{spec.tag}:{version_tag(ref.version, gpu=spec.gpu)}"


def push_target(spec: ImageSpec, tag: str) -> str | None:
    if spec.push is None:
        return None
    if repository_problem(spec.push):
        raise ValueError(f"--push {spec.push!r} is not a repository like REGISTRY/REPO")
    return f"{spec.push}:{tag.rpartition(':')[2]}"


def build_args(spec: ImageSpec, ref: ModelRef) -> dict[str, str]:
    variant = "gpu" if spec.gpu else "cpu"
    args = {
        "BASE_IMAGE": spec.base_image or DEFAULT_BASE_IMAGES[variant],
        "MODEL": str(ref),
        env_name("device"): "auto" if spec.gpu else "cpu",
    }
    if not spec.gpu:
        # "void": the NVIDIA runtime mounts no GPU into a CPU image even on a GPU node.
        args["NVIDIA_VISIBLE_DEVICES"] = "void"
    return args


def stage_user_code(version: ModelVersion, destination: Path) -> str | None:
    """Copy the user's own code a version needs into the build context: the top-level package
    (or module) of a safetensors version's network class, as it is importable here. None when
    the version needs none (its format holds the whole model, or its class is mlcanary's)."""
    destination.mkdir(parents=True, exist_ok=True)
    architecture = version.load_options.get("architecture")
    if not isinstance(architecture, str):
        return None
    top = architecture.partition(":")[0].split(".")[0]
    if top == "mlcanary":
        return None
    found = importlib.util.find_spec(top)
    if found is None or found.origin is None:
        raise ValueError(
            f"{version.ref} needs the module {top!r} (its network class {architecture}), which "
            "cannot be imported here: install it or put it on PYTHONPATH to build the image"
        )
    if found.submodule_search_locations:
        source = Path(next(iter(found.submodule_search_locations)))
        shutil.copytree(source, destination / top, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(found.origin, destination / f"{top}.py")
    return top


def build_image(
    spec: ImageSpec,
    *,
    docker: DockerCli | None = None,
    cache: Path | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    timeout_s: float = 1800,
) -> BuiltImage:
    """Raises ValueError or LookupError for what the user named, DockerError and
    WheelhouseError for what failed while building or pushing."""
    ref = ModelRef.parse(spec.model)
    version = get_version(ref)
    verify_sha256(version.artifact, version.digest)
    tag = image_tag(spec, ref)
    remote = push_target(spec, tag)
    docker = docker or DockerCli()
    docker.check()
    project = project_root()
    with tempfile.TemporaryDirectory(prefix="mlcanary-image-") as staging:
        context = Path(staging) / "context"
        on_step("wheelhouse: the project and its pinned dependencies")
        build_wheelhouse(project, cache or image_cache_dir(), context / "wheelhouse")
        on_step(f"bento: {ref}")
        bento = export_bento(ref, context / "bento")
        user_code = stage_user_code(version, context / "usercode")
        if user_code is not None:
            on_step(f"user code: {user_code} (the network's class)")
        on_step(f"docker build: {tag}")
        image_id = docker.build(
            context, project / "Dockerfile.gpu", build_args(spec, ref), timeout_s
        )
    docker.tag(image_id, tag)
    pushed = None
    if remote is not None:
        on_step(f"docker push: {remote}")
        docker.tag(image_id, remote)
        try:
            digest = docker.push(remote, timeout_s)
        except DockerError:
            docker.untag(remote)
            raise
        pushed = f"{remote}@{digest}"
    return BuiltImage(image_id=image_id, tag=tag, bento=bento, pushed=pushed)
