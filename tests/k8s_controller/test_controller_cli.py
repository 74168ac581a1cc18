"""``mlcanary controller`` through typer, against the API double via a kubeconfig file."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from mlcanary.k8s.controller_cli import controller
from mlcanary.serving.launcher import free_port
from tests.k8s_controller.cluster import Cluster, rollout_document

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
