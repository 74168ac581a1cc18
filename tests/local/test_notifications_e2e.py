"""Notifications during a real rollback on the single-machine platform: the less accurate digits
v3 against v2, real BentoML services behind HAProxy, a real Prometheus, labeled Locust traffic,
and the webhook, Slack and Teams messages received on a real HTTP server on loopback.

Prometheus and HAProxy are Debian packages that `.ci/run` installs; outside CI a machine without
them skips this test and says why, in CI their absence fails it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from mlcanary.demo import EXAMPLES
from mlcanary.local.scenario import Expected, Traffic, run_rollouts
from mlcanary.rollout.status import Phase
from tests.conftest import require
from tests.notify.receiver import receiving

pytestmark = pytest.mark.e2e


def test_the_webhooks_hear_of_a_real_rollback(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for binary in ("prometheus", "haproxy"):
        require(shutil.which(binary) is not None, f"{binary} is not installed")
    with receiving() as receiver:
        monkeypatch.setenv("MLCANARY_TEST_SLACK_URL", receiver.url("/slack"))
        monkeypatch.setenv("MLCANARY_TEST_TEAMS_URL", receiver.url("/teams"))
        document = yaml.safe_load((EXAMPLES / "worse-canary.yaml").read_text())
        document["spec"]["notifications"] = [
            {"type": "webhook", "url": receiver.url("/hook")},
            {"type": "slack", "urlFrom": {"env": "MLCANARY_TEST_SLACK_URL"}},
            {"type": "teams", "urlFrom": {"env": "MLCANARY_TEST_TEAMS_URL"}},
        ]
        spec = tmp_path / "digits-v3.yaml"
        spec.write_text(yaml.safe_dump(document))
        log = tmp_path / "rollout.log"
        with log.open("w") as output:
            code = run_rollouts(
                [Expected(spec, Phase.ROLLED_BACK)],
                tmp_path,
                Console(file=output, width=140),
                traffic=Traffic(users=8),
                fast=True,
            )
        assert code == 0, log.read_text()[-3000:]
        received = receiver.wait_for(6)  # Started and RolledBack, to each of the three
    by_path = {path: [r for r in received if r.path == path] for path in ("/hook", "/slack")}
    hooks = [r.json() for r in by_path["/hook"]]
    assert [h["event"] for h in hooks] == ["Started", "RolledBack"]
    started, rolled_back = hooks
    assert started["weights"] == {"stable": 90, "canary": 10}
    assert (rolled_back["model"], rolled_back["stableVersion"], rolled_back["canaryVersion"]) == (
        "digits",
        "v2",
        "v3",
    )
    assert (rolled_back["phase"], rolled_back["previousPhase"]) == ("RolledBack", "Progressing")
    assert rolled_back["weights"] == {"stable": 100, "canary": 0}
    assert rolled_back["severity"] == "warning"
    failed = [r for r in rolled_back["reasons"] if r["verdict"] == "fail"]
    assert failed, rolled_back["reasons"]
    for reason in failed:
        assert reason["canary"] is not None
        assert reason["rule"]
    accuracy = next(r for r in rolled_back["reasons"] if r["metric"] == "accuracy")
    assert accuracy["canary"] < accuracy["stable"]
    assert [r.json()["text"].split(":")[0] for r in by_path["/slack"]] == [
        "digits-v3 started",
        "digits-v3 rolled back",
    ]
    teams = [r.json() for r in received if r.path == "/teams"]
    assert [t["attachments"][0]["content"]["body"][0]["color"] for t in teams] == [
        "Good",
        "Attention",
    ]
