"""``mlcanary controller`` through typer, against the API double via a kubeconfig file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner

from mlcanary.k8s.controller_cli import controller
from mlcanary.serving.launcher import free_port
from tests.k8s.cluster import Cluster, rollout_document
from tests.k8s.scenarios import wait_for

app = typer.Typer()
app.command()(controller)


def _kubeconfig(path: Path, server: str) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": server}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "nobody"}}],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _unboxed(output: str) -> str:
    """The error text without the panel typer draws around it, lines joined."""
    return " ".join(output.replace("│", " ").split())


def test_once_ticks_every_rollout_and_prints_where_it_stands(
    cluster: Cluster, tmp_path: Path
) -> None:
    document = rollout_document("gateway-api")
    # Nothing listens there: the metrics are unavailable, and the rollout starts anyway.
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    cluster.install(document)
    kubeconfig = _kubeconfig(tmp_path / "config", cluster.double.url)
    result = CliRunner().invoke(
        app, ["--namespace", "serving", "--kubeconfig", str(kubeconfig), "--once", "--drain", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Progressing" in result.output
    assert "canary  10%" in result.output
    assert cluster.httproute_weights() == {"v1": 90, "v2": 10}


def test_no_cluster_credentials_is_a_usage_error_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(app, ["--namespace", "serving"])
    assert result.exit_code == 2
    assert "--kubeconfig" in result.output
    assert "not running in a cluster" in _unboxed(result.output)
    missing = CliRunner().invoke(
        app, ["--namespace", "serving", "--kubeconfig", str(tmp_path / "absent")]
    )
    assert missing.exit_code == 2
    assert "is not a file" in _unboxed(missing.output)


def _status(port: int, path: str) -> int | None:
    try:
        with httpx.Client(timeout=5) as client:
            return client.get(f"http://127.0.0.1:{port}{path}").status_code
    except httpx.TransportError:
        return None


def test_the_running_controller_answers_its_probes_until_stopped(
    cluster: Cluster, tmp_path: Path
) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    cluster.install(document)
    kubeconfig = _kubeconfig(tmp_path / "config", cluster.double.url)
    port = free_port()
    # What the rendered controller Deployment runs.
    command = [
        sys.executable, "-m", "mlcanary.k8s.controller_cli", "--namespace", "serving",
        "--kubeconfig", str(kubeconfig), "--drain", "0",
        "--health-host", "127.0.0.1", "--health-port", str(port),
    ]  # fmt: skip
    log = tmp_path / "controller.log"
    with (
        log.open("w") as output,
        subprocess.Popen(command, stdout=output, stderr=output) as process,
    ):
        try:
            wait_for(lambda: _status(port, "/readyz") == 200 or process.poll() is not None, 60)
            assert process.poll() is None, log.read_text()
            assert _status(port, "/healthz") == 200
        finally:
            process.terminate()
            code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert _status(port, "/healthz") is None  # the endpoint went with the controller


def test_a_health_port_in_use_is_a_usage_error_naming_the_option(
    cluster: Cluster, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", cluster.double.url)
    taken = cluster.double.url.rpartition(":")[2]  # the double listens there
    result = CliRunner().invoke(
        app,
        ["--namespace", "serving", "--kubeconfig", str(kubeconfig), "--health-port", taken],
    )
    assert result.exit_code == 2
    assert "--health-port" in result.output
    assert f"cannot listen on 127.0.0.1:{taken}" in _unboxed(result.output)
    short = CliRunner().invoke(
        app,
        ["--namespace", "serving", "--kubeconfig", str(kubeconfig), "--stale-after", "10"],
    )
    assert short.exit_code == 2
    assert "must exceed the watch timeout" in _unboxed(short.output)
