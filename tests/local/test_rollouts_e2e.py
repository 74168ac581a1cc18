"""The single-machine platform end to end: real BentoML services, the local router, a real
Prometheus server, Locust traffic; one promotion, one rollback, and a controller killed mid-way.

Prometheus is a Debian package that `.ci/run` installs; outside CI a machine without it skips
these tests and says why, in CI its absence fails them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rich.console import Console

from mlcanary.demo import EXAMPLES, run_demo
from mlcanary.local.platform import LocalPlatform
from mlcanary.local.report import read_timeline
from mlcanary.rollout.status import Phase
from mlcanary.serving.launcher import free_port

pytestmark = pytest.mark.e2e

if shutil.which("prometheus") is None:
    if os.environ.get("CI") == "true":
        pytest.fail("prometheus is not installed; .ci/run installs it", pytrace=False)
    pytest.skip("prometheus is not installed (apt-get install prometheus)", allow_module_level=True)


def test_demo_promotes_the_better_canary_and_rolls_back_the_worse(tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "demo.log").open("w"), width=140)
    code = run_demo(tmp_path, console, fast=True)
    console.file.close()
    log = (tmp_path / "demo.log").read_text()
    assert code == 0, log[-3000:]
    samples = read_timeline(tmp_path / "timeline.jsonl")
    finals = {s.rollout: s.phase for s in samples if s.action.value in {"promote", "rollback"}}
    assert finals == {"digits-v2": Phase.SUCCEEDED, "digits-v3": Phase.ROLLED_BACK}
    promoted = [s for s in samples if s.rollout == "digits-v2"]
    assert [s.weights.canary for s in promoted if s.action.value != "hold"] == [100, 100]
    assert any(s.weights.canary == 10 for s in promoted)
    assert (tmp_path / "report.md").read_text().count("digits-v") >= 2
    assert (tmp_path / "rollouts.png").stat().st_size > 10_000


def _status(state: Path, name: str) -> dict[str, Any] | None:
    stored = LocalPlatform(state).store.load(name)
    return stored.status.model_dump(mode="json") if stored else None


def test_a_controller_killed_mid_rollout_resumes_at_the_same_step(tmp_path: Path) -> None:
    router = f"http://127.0.0.1:{free_port()}"
    document = yaml.safe_load((EXAMPLES / "better-canary.yaml").read_text())
    document["spec"]["router"]["address"] = router
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    document["spec"]["analysis"].update(interval="2s", maxDuration="10m", minSamples=10**6)
    spec = tmp_path / "rollout.yaml"
    spec.write_text(yaml.safe_dump(document))
    state = tmp_path / "state"
    command = [sys.executable, "-m", "mlcanary.cli", "rollout", "run", "-f", str(spec),
               "--state-dir", str(state)]  # fmt: skip
    log = (tmp_path / "controller.log").open("ab")
    try:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while (status := _status(state, "digits-v2")) is None or status["phase"] != "Progressing":
            assert first.poll() is None, (tmp_path / "controller.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the rollout never started"
            time.sleep(1)
        time.sleep(5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = _status(state, "digits-v2")
        assert before is not None
        routes = httpx.get(f"{router}/-/routes", timeout=10).json()
        assert {r["version"]: r["weight"] for r in routes["routes"]} == {"v1": 90, "v2": 10}
        second = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(8)
        after = _status(state, "digits-v2")
        assert after is not None
        assert (after["stepIndex"], after["weights"]) == (before["stepIndex"], before["weights"])
        assert after["history"][: len(before["history"])] == before["history"]
        routes = httpx.get(f"{router}/-/routes", timeout=10).json()
        assert {r["version"]: r["weight"] for r in routes["routes"]} == {"v1": 90, "v2": 10}
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    finally:
        log.close()
        LocalPlatform(state).down()
