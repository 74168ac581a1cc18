"""The images `mlcanary build` makes, built for real: a scikit-learn and a torch version's CPU
images and the controller's, measured and looked into, run as containers on the host network
(loopback only), the torch one pushed to and pulled back from a real registry; and, when built
(`gpu_image`), the GPU image with torch's CUDA build, run where no GPU is."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
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
from mlcanary.serving.image.doubles import find_test_doubles
from mlcanary.serving.launcher import free_port
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.controller_process import kubeconfig
from tests.serving.image.conftest import ROOT, Images, Registry
from tests.serving.promtext import metric

pytestmark = pytest.mark.integration

# The targets of docs/gpu-and-images.md, "Image sizes", in bytes as `docker image inspect`
# gives them (MB = 10**6, as docker prints).
SIZE_TARGETS = {"sklearn": 500 * 10**6, "torch": 1200 * 10**6, "controller": 300 * 10**6}
# What serves no request: the load generator, plotting, the Kubernetes client.
NOT_SERVING = ("locust", "matplotlib", "kubernetes")
SITE = "/opt/mlcanary/lib/python3.11/site-packages"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LABELER_KEY = "image-test-labeler-key"
LABELER = {"Authorization": f"Bearer {LABELER_KEY}"}


def _docker(docker: DockerCli, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        [docker.binary, *args], capture_output=True, text=True, check=False, timeout=600
    )
    assert not check or result.returncode == 0, result.stderr
    return result.stdout.strip()


def _logs(docker: DockerCli, container: str) -> str:
    """Both of the container's streams: the service logs to stderr."""
    result = subprocess.run(
        [docker.binary, "logs", container], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr


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
            assert state["Running"], _logs(docker, name)
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, _logs(docker, name)
            time.sleep(0.5)
        yield url, name
    finally:
        _docker(docker, "rm", "--force", name, check=False)


@pytest.fixture(params=["sklearn", "torch", "gpu"])
def serving_image(request: pytest.FixtureRequest) -> tuple[str, BuiltImage]:
    """Each serving image in turn; the GPU one is asked for last, so that its skip (when it is
    not built) leaves the CPU images' tests running."""
    variant: str = request.param
    if variant == "gpu":
        image: BuiltImage = request.getfixturevalue("gpu_image")
    else:
        image = getattr(request.getfixturevalue("images"), variant)
    return variant, image


def _python(docker: DockerCli, image: BuiltImage, code: str, *args: str) -> Any:
    """What ``code`` prints as JSON, run by the image's Python with no network."""
    output = _docker(docker, "run", "--rm", "--network", "none", "--entrypoint", "python",
                     image.tag, "-c", code, *args)  # fmt: skip
    return json.loads(output)


def _modules(docker: DockerCli, image: BuiltImage, *names: str) -> dict[str, bool]:
    code = (
        "import importlib.util, json, sys; print(json.dumps("
        "{name: importlib.util.find_spec(name) is not None for name in sys.argv[1:]}))"
    )
    found: dict[str, bool] = _python(docker, image, code, *names)
    return found


def test_the_image_serves_predict_feedback_metrics_and_turns_healthy(
    serving_image: tuple[str, BuiltImage], docker: DockerCli
) -> None:
    variant, image = serving_image
    version = "v1" if variant == "sklearn" else "v2"
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


def test_the_image_runs_unprivileged_without_build_tools(
    serving_image: tuple[str, BuiltImage], docker: DockerCli
) -> None:
    variant, image = serving_image
    config = _inspect(docker, "image", image.tag)["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == "10001"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "3000/tcp" in config["ExposedPorts"]
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["NVIDIA_VISIBLE_DEVICES"] == ("all" if variant == "gpu" else "void")
    assert env["MLCANARY_DEVICE"] == ("auto" if variant == "gpu" else "cpu")
    probe = (
        "import importlib.util, json, os; "
        "print(json.dumps([importlib.util.find_spec('pip') is None, "
        "os.path.exists('/wheelhouse'), os.getuid()]))"
    )
    assert _python(docker, image, probe) == [True, False, 10001]


def test_a_serving_image_carries_its_framework_and_nothing_that_serves_no_request(
    serving_image: tuple[str, BuiltImage], docker: DockerCli
) -> None:
    variant, image = serving_image
    found = _modules(docker, image, "bentoml", "sklearn", "torch", *NOT_SERVING)
    assert found == {
        "bentoml": True,
        "sklearn": True,
        "torch": variant != "sklearn",
        **dict.fromkeys(NOT_SERVING, False),
    }


def test_no_image_carries_the_test_doubles(images: Images, docker: DockerCli) -> None:
    doubles = find_test_doubles(ROOT / "mlcanary")
    assert "gpu/nvml_fake.py" in doubles
    probe = (
        "import json, os, sys; "
        f"print(json.dumps([p for p in sys.argv[1:] if os.path.exists('{SITE}/mlcanary/' + p)]))"
    )
    for image in (images.sklearn, images.torch, images.controller):
        present = _python(docker, image, probe, "__init__.py", "gpu/nvml.py", *doubles)
        assert present == ["__init__.py", "gpu/nvml.py"], image.tag


def test_the_images_fit_their_size_targets(images: Images, docker: DockerCli) -> None:
    for job, target in SIZE_TARGETS.items():
        tag = getattr(images, job).tag
        size = int(_docker(docker, "image", "inspect", "--format", "{{.Size}}", tag))
        assert size <= target, f"{job} image {tag}: {size / 1e6:.0f} MB > {target / 1e6:.0f} MB"


def test_the_controller_image_runs_the_controller_without_the_serving_stack(
    images: Images, docker: DockerCli, tmp_path: Path
) -> None:
    image = images.controller
    config = _inspect(docker, "image", image.tag)["Config"]
    assert (config["User"], config["Entrypoint"]) == ("10001", ["mlcanary", "controller"])
    absent = ["torch", "bentoml", "sklearn", *NOT_SERVING[:2], "kubernetes.aio"]
    found = _modules(docker, image, "kubernetes", *absent)
    assert found == {"kubernetes": True, **dict.fromkeys(absent, False)}
    usage = _docker(docker, "run", "--rm", "--network", "none", image.tag, "--help")
    assert "--namespace" in usage

    # One pass against an API server (the double, on loopback) that has no rollouts.
    with ApiServerDouble() as api:
        config_file = kubeconfig(tmp_path / "kubeconfig", api.url)
        config_file.chmod(0o644)
        _docker(docker, "run", "--rm", "--network", "host", "--read-only",
                "--volume", f"{config_file}:/kubeconfig:ro", image.tag,
                "--namespace", "default", "--kubeconfig", "/kubeconfig", "--once")  # fmt: skip
        assert any(request.resource == "modelrollouts" for request in api.requests)


def test_the_gpu_image_has_torch_cuda_build_and_serves_on_the_cpu_without_a_gpu(
    gpu_image: BuiltImage, docker: DockerCli
) -> None:
    cuda = _python(docker, gpu_image, "import json, torch; print(json.dumps(torch.version.cuda))")
    assert cuda is not None
    # It serves (test_the_image_serves_predict_feedback_metrics_and_turns_healthy[gpu]), on
    # the CPU, and says why.
    with _container(docker, gpu_image) as (_, name):
        logs = _logs(docker, name)
    assert f"serving on the CPU: torch {version('torch').partition('+')[0]}" in logs
    assert f"is built for CUDA {cuda}, but no NVIDIA GPU is visible" in logs


def test_the_pushed_image_comes_back_from_the_registry(
    images: Images, docker: DockerCli, registry: Registry
) -> None:
    pushed = images.torch.pushed
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
    assert _inspect(docker, "image", remote)["Id"] == images.torch.image_id


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
