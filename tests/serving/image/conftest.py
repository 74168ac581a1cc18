"""Real images: built with the daemon on a debootstrapped base, run, pushed to a real registry.

Docker (Debian's docker.io, dockerd started by scripts/docker/start-dockerd.sh), debootstrap and
docker-registry are Debian packages that `.ci/run` installs; outside CI a machine without them
skips these tests and says why, in CI their absence fails them. Images are built once per
session and removed at its end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlcanary.models.registry import ModelVersion
from mlcanary.serving.image.builder import BuiltImage, ImageSpec, build_image
from mlcanary.serving.image.docker import DockerCli, DockerUnavailableError
from mlcanary.serving.launcher import free_port

ROOT = Path(__file__).resolve().parents[3]
BASE_IMAGE = "mlcanary/debian-python:bookworm-slim"
REGISTRY_BINARY = "docker-registry"


def require(present: bool, reason: str) -> None:
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; .ci/run installs and starts it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker() -> DockerCli:
    cli = DockerCli()
    try:
        cli.check()
    except DockerUnavailableError as exc:
        require(False, f"docker is not usable: {exc}")
    return cli


@pytest.fixture(scope="session")
def base_image(docker: DockerCli) -> str:
    """Made with debootstrap when missing (root only), kept between sessions as a tarball."""
    inspect = [docker.binary, "image", "inspect", BASE_IMAGE]
    if subprocess.run(inspect, capture_output=True, check=False).returncode != 0:
        require(shutil.which("debootstrap") is not None, "debootstrap is not installed")
        require(os.geteuid() == 0, f"{BASE_IMAGE} is missing and debootstrap needs root")
        script = ROOT / "scripts" / "docker" / "make-base-image.sh"
        subprocess.run(["bash", str(script), BASE_IMAGE], check=True, timeout=900)
    return BASE_IMAGE


@dataclass(frozen=True)
class Registry:
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@pytest.fixture(scope="session")
def registry(session_dir: Path) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port; docker allows plain HTTP to
    127.0.0.0/8 without any daemon configuration."""
    binary = shutil.which(REGISTRY_BINARY) or shutil.which(REGISTRY_BINARY, path="/usr/bin")
    require(
        binary is not None, "docker-registry is not installed (apt-get install docker-registry)"
    )
    assert binary is not None
    address = f"127.0.0.1:{free_port()}"
    root = session_dir / "registry"
    config = root / "config.yml"
    root.mkdir()
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '{address}'}}\n"
    )
    with (root / "registry.log").open("ab") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "registry.log").read_text()
            try:
                if httpx.get(f"http://{address}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the registry did not start in 30 s"
                time.sleep(0.2)
        yield Registry(address)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def image_cache(session_dir: Path) -> Path:
    """Wheels kept between sessions when MLCANARY_IMAGE_CACHE says where."""
    return Path(os.environ.get("MLCANARY_IMAGE_CACHE", session_dir / "image-cache"))


@dataclass(frozen=True)
class Images:
    sklearn: BuiltImage  # digits:v1's CPU image
    torch: BuiltImage  # digits:v2's CPU image, pushed to `repository`
    controller: BuiltImage
    repository: str


def _remove(docker: DockerCli, images: list[BuiltImage]) -> None:
    for image in images:
        tags = [image.tag, *([image.pushed.partition("@")[0]] if image.pushed else [])]
        subprocess.run([docker.binary, "rmi", "--force", *tags], capture_output=True, check=False)


@pytest.fixture(scope="session")
def images(
    trained: dict[str, ModelVersion],
    docker: DockerCli,
    base_image: str,
    registry: Registry,
    image_cache: Path,
) -> Iterator[Images]:
    """The CPU images of the sklearn baseline and of the torch CNN, the latter pushed to the
    registry as `mlcanary build --push` does, and the controller's image: built once, sharing
    one wheel cache (and docker's layer cache for the Python stage)."""
    session = uuid.uuid4().hex[:8]
    repository = f"{registry.address}/mlcanary-test/digits"
    built: list[BuiltImage] = []
    specs = {
        "sklearn": ImageSpec(
            "digits:v1", base_image=base_image, tag=f"mlcanary-test/digits:v1-{session}"
        ),
        "torch": ImageSpec(
            "digits:v2",
            base_image=base_image,
            tag=f"mlcanary-test/digits:v2-{session}",
            push=repository,
        ),
        "controller": ImageSpec(
            controller=True, base_image=base_image, tag=f"mlcanary-test/controller:{session}"
        ),
    }
    try:
        made = {}
        for job, spec in specs.items():
            made[job] = build_image(spec, docker=docker, cache=image_cache / "wheelhouse")
            built.append(made[job])
        yield Images(made["sklearn"], made["torch"], made["controller"], repository)
    finally:
        _remove(docker, built)


@pytest.fixture(scope="session")
def gpu_image(
    trained: dict[str, ModelVersion], docker: DockerCli, base_image: str, image_cache: Path
) -> Iterator[BuiltImage]:
    """The torch CNN's GPU image, with torch's CUDA build: 2.7 GB of wheels to fetch the first
    time (about a minute here) and a build of about 3.5 minutes on 2 cores, inside CI's budget;
    MLCANARY_TEST_GPU_IMAGE=0 leaves it out where disk or time is short."""
    if os.environ.get("MLCANARY_TEST_GPU_IMAGE") == "0":
        pytest.skip("MLCANARY_TEST_GPU_IMAGE=0: the GPU image is not built")
    cache = image_cache / "wheelhouse"
    spec = ImageSpec(
        "digits:v2",
        gpu=True,
        base_image=base_image,
        tag=f"mlcanary-test/digits:v2-gpu-{uuid.uuid4().hex[:8]}",
    )
    image = build_image(spec, docker=docker, cache=cache, timeout_s=3600)
    try:
        yield image
    finally:
        _remove(docker, [image])
