"""``mlcanary controller`` through typer, against the API double via a kubeconfig file."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mlcanary.k8s import naming
from mlcanary.k8s.controller_cli import controller
from mlcanary.k8s.leader import LeaderElector, LeaseSettings
from mlcanary.serving.launcher import free_port
from tests.k8s.cluster import NAMESPACE, Cluster, rollout_document
from tests.k8s.controller_process import controller_process, kubeconfig
from tests.k8s.scenarios import wait_for

app = typer.Typer()
app.command()(controller)


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
    config = kubeconfig(tmp_path / "config", cluster.double.url)
    result = CliRunner().invoke(
        app, ["--namespace", "serving", "--kubeconfig", str(config), "--once", "--drain", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Progressing" in result.output
    assert "canary  10%" in result.output
    assert cluster.httproute_weights() == {"v1": 90, "v2": 10}


def test_once_acts_only_while_no_running_controller_holds_the_lease(
    cluster: Cluster, tmp_path: Path
) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    cluster.install(document)
    once = [
        "--namespace", "serving", "--once", "--drain", "0", "--identity", "once",
        "--kubeconfig", str(kubeconfig(tmp_path / "config", cluster.double.url)),
    ]  # fmt: skip
    deployed = LeaseSettings(naming.CONTROLLER, NAMESPACE, "deployed-7d9f")
    with LeaderElector(deployed, cluster.double.configuration(), user_agent="test") as running:
        assert running.try_acquire()
        refused = CliRunner().invoke(app, once)
        assert refused.exit_code == 1
        assert "deployed-7d9f holds it" in refused.output
        assert cluster.status() == {}  # nothing ticked
        assert cluster.httproute_weights() == {"v1": 100, "v2": 0}
    assert (
        cluster.lease()["spec"]["holderIdentity"] == ""
    )  # handed back by the running controller as it stopped
    result = CliRunner().invoke(app, once)
    assert result.exit_code == 0, result.output
    assert cluster.httproute_weights() == {"v1": 90, "v2": 10}
    assert cluster.lease()["spec"]["holderIdentity"] == ""  # and by --once after its pass


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


def test_the_running_controller_answers_its_probes_until_stopped(
    cluster: Cluster, tmp_path: Path
) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    cluster.install(document)
    with controller_process(cluster.double.url, tmp_path, "only") as running:
        leading = (200, "ok: leading\n")
        wait_for(
            lambda: running.probe("/readyz") == leading or running.process.poll() is not None, 60
        )
        assert running.process.poll() is None, running.output()
        assert running.probe("/healthz") == (200, "ok\n")
        running.process.terminate()
        code = running.process.wait(timeout=60)
    assert code == 0, running.output()
    assert running.probe("/healthz") is None  # the endpoint went with the controller


def test_a_health_port_in_use_is_a_usage_error_naming_the_option(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = kubeconfig(tmp_path / "config", cluster.double.url)
    taken = cluster.double.url.rpartition(":")[2]  # the double listens there
    result = CliRunner().invoke(
        app,
        ["--namespace", "serving", "--kubeconfig", str(config), "--health-port", taken],
    )
    assert result.exit_code == 2
    assert "--health-port" in result.output
    assert f"cannot listen on 127.0.0.1:{taken}" in _unboxed(result.output)
    short = CliRunner().invoke(
        app,
        ["--namespace", "serving", "--kubeconfig", str(config), "--stale-after", "10"],
    )
    assert short.exit_code == 2
    assert "must exceed the watch timeout" in _unboxed(short.output)


@pytest.mark.parametrize(
    ("flags", "named", "problem"),
    [
        (["--renew-deadline", "20"], "--lease-duration", "15s must exceed the renew deadline"),
        (["--retry-period", "9"], "--renew-deadline", "10s must exceed 1.2 x the retry period"),
        (["--retry-period", "0"], "--retry-period", "0s must be above 0"),
    ],
)
def test_lease_settings_that_cannot_elect_are_usage_errors_naming_the_option(
    tmp_path: Path, flags: list[str], named: str, problem: str
) -> None:
    result = CliRunner().invoke(
        app, ["--namespace", "serving", "--kubeconfig", str(tmp_path / "unused"), *flags]
    )
    assert result.exit_code == 2
    assert named in result.output
    assert problem in _unboxed(result.output)
