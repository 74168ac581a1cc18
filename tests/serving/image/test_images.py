"""The CPU image and the Dockerfile.gpu image, built for real, run as containers on the host
network (loopback only), and the GPU one pushed to and pulled back from a real registry."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from mlcanary.models.reference.dataset import digits_split
from mlcanary.serving.image.builder import BuiltImage
from mlcanary.serving.image.cli import build_command
from mlcanary.serving.image.docker import DockerCli
from mlcanary.serving.launcher import free_port
from tests.serving.image.conftest import Images, Registry
from tests.serving.promtext import metric

pytestmark = pytest.mark.integration

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LABELER_KEY = "image-test-labeler-key"
LABELER = {"Authorization": f"Bearer {LABELER_KEY}"}


def _docker(docker: DockerCli, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        [docker.binary, *args], capture_output=True, text=True, check=False, timeout=600
    )
    assert not check or result.returncode == 0, result.stderr
    return result.stdout.strip()


def _inspect(docker: DockerCli, kind: str, name: str) -> dict[str, Any]:
    document: list[dict[str, Any]] = json.loads(_docker(docker, kind, "inspect", name))
    return document[0]


@contextlib.contextmanager
def _container(docker: DockerCli, image: BuiltImage) -> Iterator[tuple[str, str]]:
    """The image running with a read-only root filesystem, as in a locked-down cluster."""
    port = free_port()
    name = f"mlcanary-test-{uuid.uuid4().hex[:8]}"
    _docker(
        docker, "run", "--detach", "--name", name, "--network", "host", "--read-only",
        "--tmpfs", "/tmp", "--env", "BENTOML_HOST=127.0.0.1", "--env", f"BENTOML_PORT={port}",
        "--env", f"MLCANARY_LABELER_KEY={LABELER_KEY}", image.tag,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            state = _inspect(docker, "container", name)["State"]
            assert state["Running"], _docker(docker, "logs", name, check=False)
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, _docker(docker, "logs", name, check=False)
            time.sleep(0.5)
        yield url, name
    finally:
        _docker(docker, "rm", "--force", name, check=False)


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_the_image_serves_predict_feedback_metrics_and_turns_healthy(
    images: Images, docker: DockerCli, variant: str
) -> None:
    image = getattr(images, variant)
    version = "v1" if variant == "cpu" else "v2"
    split = digits_split()
    rows, labels = split.x_holdout[:8], split.y_holdout[:8]
    with _container(docker, image) as (url, name):
        predicted = httpx.post(f"{url}/predict", json={"instances": rows.tolist()}, timeout=10)
        assert predicted.status_code == 200, predicted.text
        body = predicted.json()
        assert (body["model"], body["version"]) == ("digits", version)
        assert len(body["predictions"]) == 8
        correct = sum(int(p == y) for p, y in zip(body["predictions"], labels, strict=True))
        assert correct >= 6, "a trained model gets most holdout rows right"

        for token, label in zip(body["feedback_tokens"], labels.tolist(), strict=True):
            answer = httpx.post(
                f"{url}/feedback", headers=LABELER, json={"token": token, "label": label}
            )
            assert answer.status_code == 200, answer.text
        replay = httpx.post(
            f"{url}/feedback",
            headers=LABELER,
            json={"token": body["feedback_tokens"][0], "label": 0},
        )
        assert replay.status_code == 409

        labels_of = {"model": "digits", "version": version}
        assert metric(url, "mlcanary_predictions_total", **labels_of) == 8
        assert metric(url, "mlcanary_feedback_total", outcome="correct", **labels_of) == correct
        assert metric(url, "mlcanary_feedback_total", **labels_of) == 8
        assert metric(url, "mlcanary_model_info", device="cpu", **labels_of) == 1

        deadline = time.monotonic() + 120
        while (health := _inspect(docker, "container", name)["State"]["Health"])["Status"] != (
            "healthy"
        ):
            assert health["Status"] == "starting", health
            assert time.monotonic() < deadline, health
            time.sleep(1)


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_the_image_runs_unprivileged_without_build_tools(
    images: Images, docker: DockerCli, variant: str
) -> None:
    image = getattr(images, variant)
    config = _inspect(docker, "image", image.tag)["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == "10001"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "3000/tcp" in config["ExposedPorts"]
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["NVIDIA_VISIBLE_DEVICES"] == ("all" if variant == "gpu" else "void")
    assert env["MLCANARY_DEVICE"] == ("auto" if variant == "gpu" else "cpu")
    probe = (
        "import importlib.util, os, sys; "
        "sys.exit(0 if importlib.util.find_spec('pip') is None "
        "and not os.path.exists('/wheelhouse') and os.getuid() == 10001 else 1)"
    )
    _docker(docker, "run", "--rm", "--network", "none", "--entrypoint", "python", image.tag,
            "-c", probe)  # fmt: skip


def test_the_pushed_image_comes_back_from_the_registry(
    images: Images, docker: DockerCli, registry: Registry
) -> None:
    pushed = images.gpu.pushed
    assert pushed is not None
    remote, _, digest = pushed.partition("@")
    repository, _, tag = remote.rpartition(":")
    path = repository.partition("/")[2]
    tags = httpx.get(f"{registry.url}/v2/{path}/tags/list", timeout=10).json()
    assert tag in tags["tags"]
    manifest = httpx.head(
        f"{registry.url}/v2/{path}/manifests/{tag}", headers={"Accept": MANIFEST_V2}, timeout=10
    )
    assert manifest.headers["Docker-Content-Digest"] == digest

    _docker(docker, "rmi", remote)
    _docker(docker, "pull", remote)
    assert _inspect(docker, "image", remote)["Id"] == images.gpu.image_id


def _cli() -> typer.Typer:
    """Mounted as the project's command line mounts it."""
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("build")(build_command)
    return app


def test_an_unknown_version_is_refused_before_building(images: Images) -> None:
    result = CliRunner().invoke(_cli(), ["build", "--model", "digits:v99"])
    assert result.exit_code == 2
    assert "digits:v99 is not in the model store" in result.output


def test_a_failed_build_leaves_no_tag(
    images: Images, docker: DockerCli, image_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCANARY_IMAGE_CACHE", str(image_cache))
    tag = f"mlcanary-test/broken:{uuid.uuid4().hex[:8]}"
    arguments = ["build", "--model", "digits:v1", "--tag", tag,
                 "--base-image", "mlcanary-test/no-such-base:none"]  # fmt: skip
    result = CliRunner().invoke(_cli(), arguments)
    assert result.exit_code == 1
    assert "docker build failed" in result.output
    assert _docker(docker, "image", "inspect", tag, check=False) == "[]"
