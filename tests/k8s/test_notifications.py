"""Notifications from the in-cluster controller, through the official client against the API
server double: an Event on the rollout for each, and the spec's targets on a real loopback HTTP
server, the Slack URL read from the variable that the rendered Deployment sets from a Secret;
the deliveries counted on the controller's /metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mlcanary.k8s import naming
from mlcanary.k8s.controller_health import HealthServer, LoopProgress
from tests.k8s import scenarios
from tests.k8s.cluster import Cluster, drive, rollout_document
from tests.notify.receiver import receiving
from tests.rollout.test_controller import stream


def test_a_rollback_is_told_as_events_on_the_rollout(cluster: Cluster) -> None:
    outcome = scenarios.rollout(cluster, "gateway-api", canary_accuracy=0.85)
    assert [(kind, reason) for kind, reason, _ in outcome.events] == [
        ("Normal", "Started"),
        ("Warning", "RolledBack"),
    ]
    assert outcome.events[-1][2] == outcome.status["message"]


@pytest.mark.parametrize(
    ("word", "event"), [("abort", ("Warning", "Aborted")), ("pause", ("Normal", "Paused"))]
)
def test_a_persons_command_is_told_as_an_event(cluster: Cluster, word: str, event: Any) -> None:
    outcome = scenarios.command(cluster, word)
    assert [(kind, reason) for kind, reason, _ in outcome.events] == [("Normal", "Started"), event]


def _secret_variable(cluster: Cluster, secret: dict[str, str]) -> str:
    """The variable the rendered controller Deployment fills from the Secret's key."""
    deployment = cluster.deployment(naming.CONTROLLER)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [name] = [
        variable["name"]
        for variable in container["env"]
        if (variable.get("value_from") or {}).get("secret_key_ref") == {**secret, "optional": True}
    ]
    return str(name)


def test_the_specs_targets_hear_of_a_rollback_and_the_controller_counts_them(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {"name": "alerts", "key": "slack-url"}
    document = rollout_document("gateway-api")
    with receiving() as receiver:
        document["spec"]["notifications"] = [
            {"type": "webhook", "url": receiver.url("/hook"), "events": ["RolledBack"]},
            {"type": "slack", "urlFrom": {"secretKeyRef": secret}},
        ]
        cluster.install(document)
        # What the kubelet does with the Deployment `mlcanary k8s render` wrote.
        monkeypatch.setenv(_secret_variable(cluster, secret), receiver.url("/slack"))
        controller = cluster.controller(stream(60, 0.85), drain_s=0)
        drive(cluster, controller)
        assert cluster.status()["phase"] == "RolledBack"
        received = receiver.wait_for(3)
        with HealthServer(
            LoopProgress(), "127.0.0.1", 0, controller.notifications.registry
        ) as health:
            scenarios.wait_for(
                lambda: (
                    "notifications[0]" in _metrics(health.port)
                    and 'outcome="delivered",rollout="digits-v2",target="notifications[1]",'
                    'type="slack"} 2.0'
                    in _metrics(health.port)
                )
            )
            metrics = _metrics(health.port)
        controller.close()
    [hook] = [r.json() for r in received if r.path == "/hook"]
    assert (hook["event"], hook["phase"], hook["previousPhase"]) == (
        "RolledBack",
        "RolledBack",
        "Progressing",
    )
    assert hook["rollout"] == {"name": "digits-v2", "namespace": "serving"}
    assert hook["weights"] == {"stable": 100, "canary": 0}
    assert any(r["metric"] == "accuracy" and r["verdict"] == "fail" for r in hook["reasons"])
    slack = [r.json()["text"] for r in received if r.path == "/slack"]
    assert [text.split(":")[0] for text in slack] == ["digits-v2 started", "digits-v2 rolled back"]
    assert (
        'mlcanary_notifications_total{outcome="delivered",rollout="digits-v2",'
        'target="notifications[0]",type="webhook"} 1.0'
    ) in metrics
    assert receiver.url() not in metrics


def _metrics(port: int) -> str:
    with httpx.Client(timeout=5) as client:
        return client.get(f"http://127.0.0.1:{port}/metrics").text


def test_render_hands_the_controller_each_secret_its_notifications_name(
    cluster: Cluster,
) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["notifications"] = [
        {"type": "slack", "urlFrom": {"secretKeyRef": {"name": "alerts", "key": "slack"}}},
        {"type": "teams", "urlFrom": {"secretKeyRef": {"name": "alerts", "key": "teams"}}},
        {"type": "teams", "urlFrom": {"secretKeyRef": {"name": "alerts", "key": "teams"}}},
        {"type": "webhook", "urlFrom": {"env": "HOOK_URL"}},
    ]
    cluster.install(document)
    names = {
        _secret_variable(cluster, {"name": "alerts", "key": key}) for key in ("slack", "teams")
    }
    assert len(names) == 2
    assert all(name.startswith("NOTIFY_ALERTS_") for name in names)
