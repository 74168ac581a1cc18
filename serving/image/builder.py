"""``mlcanary build``: one model version as a container image, optionally pushed to a registry.

The image is built from ``Dockerfile.gpu`` rather than with ``bentoml containerize``: that
command renders its own Dockerfile which installs packages from the network during the build
and needs a registry to pull its base images and, for BentoML's default, buildx; ours installs
a wheelhouse made here with ``--no-index``, leaves no build tools in the final stage, runs as a
non-root user on a read-only root filesystem, and builds on any base image given, including
one made locally without a registry. Everything that can be refused (the version, the names,
the daemon) is checked before anything is built, and the image is tagged only once the build
has succeeded, so a failure leaves no half-built tag behind.

Each image installs what its job needs and nothing else: a version's image the ``serve`` extra
with its framework's (`FRAMEWORK_EXTRAS`), the controller's image the ``controller`` extra; torch
is the CPU build in CPU images and a CUDA build in GPU images (`mlcanary.serving.image.wheelhouse`).
No image carries the package's test doubles (`mlcanary.serving.image.doubles`) or the test suites
of its dependencies.
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
from mlcanary.serving.image.doubles import find_test_doubles
from mlcanary.serving.image.names import (
    controller_image,
    controller_tag,
    has_tag,
    repository_problem,
    tag_problem,
    version_image,
    version_tag,
)
from mlcanary.serving.image.wheelhouse import (
    CPU_TORCH,
    TorchBuild,
    build_wheelhouse,
    cuda_torch,
    project_root,
)
from mlcanary.settings import BuildSettings, env_name

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_CUDA",
    "FRAMEWORK_EXTRAS",
    "BuiltImage",
    "ImageSpec",
    "build_args",
    "build_image",
    "image_cache_dir",
    "image_tag",
    "push_target",
]

# For GPU images too: the CUDA libraries come with torch's CUDA wheels, and the NVIDIA runtime
# mounts the driver, so a CUDA base image would only add a second copy of the libraries.
DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_CUDA = "pypi"
FRAMEWORK_EXTRAS = {"sklearn": "serve", "torch": "torch", "onnx": "onnx"}
CONTROLLER_EXTRAS = "controller"


@dataclass(frozen=True)
class ImageSpec:
    """A model version's image (``model``), or the controller's (``controller``)."""

    model: str | None = None
    gpu: bool = False
    controller: bool = False
    cuda: str | None = None  # the CUDA build of torch in a GPU image; None: DEFAULT_CUDA
    base_image: str | None = None
    tag: str | None = None
    push: str | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (not self.controller):
            raise ValueError("give --model NAME:VERSION or --controller")
        if self.controller and self.gpu:
            raise ValueError("--gpu: the controller's image runs no model; build it without")
        if self.cuda is not None and not self.gpu:
            raise ValueError("--cuda chooses the torch of a GPU image: give --gpu with it")

    def torch_build(self, version: ModelVersion) -> TorchBuild | None:
        if version.framework != "torch":
            return None
        return cuda_torch(self.cuda or DEFAULT_CUDA) if self.gpu else CPU_TORCH


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    tag: str
    bento: str | None  # None for the controller's image
    pushed: str | None = None


def image_cache_dir() -> Path:
    return BuildSettings.from_env().image_cache / "wheelhouse"


def image_tag(spec: ImageSpec, ref: ModelRef | None) -> str:
    default_tag = (
        controller_tag(pushed=False) if ref is None else version_tag(ref.version, gpu=spec.gpu)
    )
    if spec.tag is None:
        if ref is None:
            return controller_image()
        return version_image(ref.name, ref.version, gpu=spec.gpu)
    repository, tag = spec.tag, None
    if has_tag(spec.tag):
        repository, _, tag = spec.tag.rpartition(":")
    if repository_problem(repository) or (tag is not None and tag_problem(tag)):
        raise ValueError(f"--tag {spec.tag!r} is not an image name like REPOSITORY[:TAG]")
    return spec.tag if tag is not None else f"{spec.tag}:{default_tag}"


def push_target(spec: ImageSpec, tag: str) -> str | None:
    if spec.push is None:
        return None
    if repository_problem(spec.push):
        raise ValueError(f"--push {spec.push!r} is not a repository like REGISTRY/REPO")
    if spec.controller:  # the release, not a version, names it: beside the versions' tags
        return controller_image(spec.push)
    return f"{spec.push}:{tag.rpartition(':')[2]}"


def build_args(spec: ImageSpec, version: ModelVersion | None) -> dict[str, str]:
    args = {"BASE_IMAGE": spec.base_image or DEFAULT_BASE_IMAGE}
    if version is None:
        return {**args, "EXTRAS": CONTROLLER_EXTRAS}
    args |= {
        "EXTRAS": FRAMEWORK_EXTRAS[version.framework],
        "MODEL": str(version.ref),
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
    version = None
    if spec.model is not None:
        version = get_version(ModelRef.parse(spec.model))
        verify_sha256(version.artifact, version.digest)
        if version.framework not in FRAMEWORK_EXTRAS:
            raise ValueError(f"{version.ref}: no image is made for framework {version.framework!r}")
    torch = spec.torch_build(version) if version is not None else None
    tag = image_tag(spec, version.ref if version is not None else None)
    remote = push_target(spec, tag)
    docker = docker or DockerCli()
    docker.check()
    project = project_root()
    extras = build_args(spec, version)["EXTRAS"]
    bento = None
    with tempfile.TemporaryDirectory(prefix="mlcanary-image-") as staging:
        context = Path(staging) / "context"
        torch_named = f", torch {torch.name} build" if torch is not None else ""
        on_step(f"wheelhouse: mlcanary[{extras}]{torch_named}, pinned as installed here")
        wheelhouse = context / "wheelhouse"
        build_wheelhouse(
            project, cache or image_cache_dir(), wheelhouse, extras=extras, torch=torch
        )
        doubles = find_test_doubles(project / "mlcanary")
        (wheelhouse / "test-doubles.txt").write_text("".join(f"{path}\n" for path in doubles))
        if version is not None:
            on_step(f"bento: {version.ref}")
            bento = export_bento(version.ref, context / "bento")
            user_code = stage_user_code(version, context / "usercode")
            if user_code is not None:
                on_step(f"user code: {user_code} (the network's class)")
        on_step(f"docker build: {tag}")
        image_id = docker.build(
            context,
            project / "Dockerfile.gpu",
            build_args(spec, version),
            timeout_s,
            target="controller" if version is None else "model",
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
