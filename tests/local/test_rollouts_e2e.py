"""The single-machine platform end to end: real BentoML services, the local router (HAProxy), a
real Prometheus server, Locust traffic; one promotion, one rollback, a controller killed mid-way
and a router killed mid-way.

Prometheus and HAProxy are Debian packages that `.ci/run` installs; outside CI a machine without
them skips these tests and says why, in CI their absence fails them.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rich.console import Console

from mlcanary.demo import EXAMPLES, ROLLOUTS, run_demo
from mlcanary.loadtest.labeled import digits_rows
from mlcanary.local.platform import LocalPlatform
from mlcanary.local.report import read_timeline
from mlcanary.local.router.admin import LocalRouter
from mlcanary.local.router.state import RouterFiles
from mlcanary.local.scenario import Traffic, run_rollouts
from mlcanary.rollout.status import Phase
from mlcanary.serving.launcher import free_port

pytestmark = pytest.mark.e2e

for _binary in ("prometheus", "haproxy"):
    if shutil.which(_binary) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{_binary} is not installed; .ci/run installs it", pytrace=False)
        pytest.skip(
            f"{_binary} is not installed (apt-get install {_binary})", allow_module_level=True
        )


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


def test_labels_later_than_the_interval_still_promote_the_better_and_roll_back_the_worse(
    trained, tmp_path: Path
) -> None:
    # Each label comes back 6 s after its prediction, three analysis intervals (2 s) late; the
    # spec says so (labelDelay), so no step is judged on its first, fastest labels alone.
    console = Console(file=(tmp_path / "late.log").open("w"), width=140)
    code = run_rollouts(
        ROLLOUTS,
        tmp_path,
        console,
        traffic=Traffic(users=8, feedback_delay_s=6.0),
        fast=True,
        analysis={"labelDelay": "6s"},
    )
    console.file.close()
    log = (tmp_path / "late.log").read_text()
    assert code == 0, log[-3000:]
    samples = read_timeline(tmp_path / "timeline.jsonl")
    finals = {s.rollout: s.phase for s in samples if s.action.value in {"promote", "rollback"}}
    assert finals == {"digits-v2": Phase.SUCCEEDED, "digits-v3": Phase.ROLLED_BACK}
    # Labels were pending while the steps ran; no rollout decided before labelDelay had passed.
    assert any(s.canary.pending_labels > 0 for s in samples)
    for name in finals:
        ticks = [s for s in samples if s.rollout == name]
        first_move = next(s for s in ticks if s.action.value != "hold")
        assert (first_move.at - ticks[0].at).total_seconds() >= 6
    assert "labels pending" in (tmp_path / "report.md").read_text()


def _status(state: Path, name: str) -> dict[str, Any] | None:
    stored = LocalPlatform(state).store.load(name)
    return stored.status.model_dump(mode="json") if stored else None


def _weights(state: Path) -> dict[str, int]:
    """The router's table, read as the controller reads it."""
    return LocalRouter(RouterFiles.of_platform(state).directory).routes().weights


def _spec(tmp_path: Path) -> tuple[Path, str, str]:
    """The better canary on free ports, holding at 10% (too many labels asked for to promote)."""
    router = f"http://127.0.0.1:{free_port()}"
    prometheus = f"http://127.0.0.1:{free_port()}"
    document = yaml.safe_load((EXAMPLES / "better-canary.yaml").read_text())
    document["spec"]["router"]["address"] = router
    document["spec"]["metrics"]["address"] = prometheus
    document["spec"]["analysis"].update(interval="2s", maxDuration="10m", minSamples=10**6)
    spec = tmp_path / "rollout.yaml"
    spec.write_text(yaml.safe_dump(document))
    return spec, router, prometheus


def _run_command(spec: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "mlcanary.cli", "rollout", "run", "-f", str(spec),
            "--state-dir", str(state)]  # fmt: skip


@contextlib.contextmanager
def _platform(state: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The controllers started in the block, and the platform they run: all stopped at its end,
    the controllers first, since a running controller starts the router and services again."""
    controllers: list[subprocess.Popen[bytes]] = []
    try:
        yield controllers
    finally:
        for controller in controllers:
            if controller.poll() is None:
                controller.kill()
                controller.wait()
        LocalPlatform(state).down()


def _wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while not ready():
        assert process.poll() is None, f"the controller exited while waiting for {what}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.5)


def test_a_controller_killed_mid_rollout_resumes_at_the_same_step(trained, tmp_path: Path) -> None:
    spec, _, _ = _spec(tmp_path)
    state = tmp_path / "state"
    command = _run_command(spec, state)
    with (tmp_path / "controller.log").open("ab") as log, _platform(state) as controllers:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        controllers.append(first)
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
        assert _weights(state) == {"v1": 90, "v2": 10}
        second = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        controllers.append(second)
        time.sleep(8)
        after = _status(state, "digits-v2")
        assert after is not None
        assert (after["stepIndex"], after["weights"]) == (before["stepIndex"], before["weights"])
        assert after["history"][: len(before["history"])] == before["history"]
        assert _weights(state) == {"v1": 90, "v2": 10}
        second.send_signal(signal.SIGTERM)
        second.wait(30)


JSON = {"content-type": "application/json"}
# The share of predictions each version answered, as the router counted them (docs/local-router.md).
ANSWERED = 'haproxy_server_http_responses_total{job="router", proxy="predict"}'
SPLIT = (
    f"sum by (server) (increase({ANSWERED}[5m]))"
    f" / ignoring (server) group_left sum(increase({ANSWERED}[5m]))"
)


def _query(prometheus: str, query: str) -> dict[str, float]:
    """The query's value for each server (one series each)."""
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    return {r["metric"]["server"]: float(r["value"][1]) for r in answer["data"]["result"]}


def _counted(split: dict[str, float]) -> bool:
    """Prometheus has scraped the router often enough to see the traffic (0/0 is NaN)."""
    return bool(split) and all(map(math.isfinite, split.values()))


def test_a_router_killed_mid_rollout_is_restarted_with_its_weights_and_the_rollout_carries_on(
    trained, tmp_path: Path
) -> None:
    spec, router, prometheus = _spec(tmp_path)
    state = tmp_path / "state"
    registry = LocalPlatform(state).registry
    body = digits_rows()[0].body
    with (tmp_path / "controller.log").open("ab") as log, _platform(state) as controllers:
        controller = subprocess.Popen(
            _run_command(spec, state), stdout=log, stderr=subprocess.STDOUT
        )
        controllers.append(controller)
        _wait_until(
            lambda: (s := _status(state, "digits-v2")) is not None and s["weights"]["canary"] == 10,
            "at 10%",
            controller,
        )
        killed = registry.get("router")
        assert killed is not None
        os.kill(killed.pid, signal.SIGKILL)
        _wait_until(
            lambda: (r := registry.get("router")) is not None and r.pid != killed.pid,
            "a new router",
            controller,
        )
        assert _weights(state) == {"v1": 90, "v2": 10}
        # Prometheus sees the new router's counters at 0 first, so that it can see them grow.
        _wait_until(
            lambda: set(_query(prometheus, f"{ANSWERED[:-1]}, code='2xx'}}")) == {"v1", "v2"},
            "the router scraped",
            controller,
        )
        with httpx.Client(base_url=router, timeout=10) as client:
            answers = [client.post("/predict", content=body, headers=JSON) for _ in range(100)]
        assert {a.status_code for a in answers} == {200}
        assert Counter(a.headers["x-mlcanary-version"] for a in answers) == {"v1": 90, "v2": 10}
        _wait_until(
            lambda: _counted(_query(prometheus, SPLIT)),
            "the split in Prometheus",
            controller,
        )
        seen = _query(prometheus, SPLIT)
        assert set(seen) == {"v1", "v2"}
        assert sum(seen.values()) == pytest.approx(1.0)
        assert 0 < seen["v2"] < seen["v1"]

        promote = [sys.executable, "-m", "mlcanary.cli", "rollout", "promote", "digits-v2",
                   "--state-dir", str(state)]  # fmt: skip
        subprocess.run(promote, check=True, capture_output=True)
        assert controller.wait(120) == 0, (tmp_path / "controller.log").read_text()[-2000:]
        assert _weights(state) == {"v2": 100}
