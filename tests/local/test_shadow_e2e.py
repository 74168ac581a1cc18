"""The shadow step on the single-machine platform: real BentoML services behind HAProxy, a real
Prometheus, labeled Locust traffic, and stable's servers copying every request to the canary.

Three rollouts on one platform, each from the version the previous one left serving: the
baseline trained again with the same seed passes its shadow step and is promoted; a canary whose
classes are shifted by one, then one trained on permuted pixel columns, is rolled back during
its shadow step, while the router counts no answer of the canary given to a client.

Prometheus and HAProxy are Debian packages that `.ci/run` installs; outside CI a machine without
them skips this test and says why, in CI their absence fails it.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

import mlcanary.local.scenario as scenario
from mlcanary.local.cli import show_tick
from mlcanary.local.platform import LocalPlatform
from mlcanary.local.report import group_by_rollout, read_timeline
from mlcanary.local.scenario import Expected, Traffic, run_rollouts
from mlcanary.rollout.controller import TickReport
from mlcanary.rollout.status import Action, Phase
from tests.conftest import require
from tests.shadow_models import shadow_canaries

__all__ = ["shadow_canaries"]

pytestmark = pytest.mark.e2e

ANALYSIS = {
    "interval": "2s",
    "maxDuration": "4m",
    "minSamples": 200,
    "accuracy": {"maxDrop": 0.05},
    "latency": {"quantile": 0.95, "maxRatio": 2.0},
    "errorRate": {"max": 0.01},
    "shadow": {"fraction": 1.0, "minAgreement": 0.9},
}


def _spec(directory: Path, stable: str, canary: str, steps: list[object]) -> Expected:
    document = {
        "apiVersion": "mlcanary.dev/v1alpha1",
        "kind": "ModelRollout",
        "metadata": {"name": f"digits-{canary}"},
        "spec": {
            "model": "digits",
            "stable": {"version": stable},
            "canary": {"version": canary},
            "router": {"type": "local", "address": "http://127.0.0.1:8080"},
            "metrics": {"provider": "prometheus", "address": "http://127.0.0.1:9090"},
            "steps": steps,
            "analysis": ANALYSIS,
        },
    }
    path = directory / f"digits-{canary}.yaml"
    path.write_text(yaml.safe_dump(document))
    expected = Phase.SUCCEEDED if canary == "v1-again" else Phase.ROLLED_BACK
    return Expected(path, expected)


def _answered(router: str, version: str) -> float:
    """The predictions ``version`` answered to clients, as the router (HAProxy) counts them;
    0 for a version it has no server for."""
    text = httpx.get(f"{router}/-/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "haproxy_server_http_responses"
        for sample in family.samples
        if sample.name == "haproxy_server_http_responses_total"
        and sample.labels.get("proxy") == "predict"
        and sample.labels.get("server") == version
    )


def _counting_ticks(
    state: Path, seen: dict[str, list[tuple[int, float]]]
) -> Callable[[TickReport], None]:
    """`show_tick`, which also records after each tick the canary's answers the router gave
    clients so far, with the step the rollout is at."""

    def tick(report: TickReport) -> None:
        show_tick(report)
        router = LocalPlatform(state).registry.get("router")
        canary = report.status.canary_version
        if router is not None and canary is not None:
            seen[canary].append((report.status.step_index, _answered(router.url, canary)))

    return tick


def test_a_shadow_step_passes_an_identical_canary_and_stops_broken_ones_unseen(
    trained, shadow_canaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for binary in ("prometheus", "haproxy"):
        require(shutil.which(binary) is not None, f"{binary} is not installed")
    rollouts = [
        _spec(tmp_path, "v1", "v1-again", ["shadow", 100]),
        _spec(tmp_path, "v1-again", "v1-shifted", ["shadow", 10, 100]),
        _spec(tmp_path, "v1-again", "v1-permuted", ["shadow", 10, 100]),
    ]
    seen: dict[str, list[tuple[int, float]]] = defaultdict(list)
    monkeypatch.setattr(scenario, "show_tick", _counting_ticks(tmp_path / "state", seen))
    log = tmp_path / "rollout.log"
    with log.open("w") as output:
        code = run_rollouts(
            rollouts, tmp_path, Console(file=output, width=160), traffic=Traffic(users=4)
        )
    assert code == 0, log.read_text()[-4000:]

    timelines = group_by_rollout(read_timeline(tmp_path / "timeline.jsonl"))
    again = timelines["digits-v1-again"]
    shadowed = [s.shadow for s in again if s.step_index == 0 and s.shadow is not None]
    assert shadowed
    assert shadowed[-1].agreement == 1.0
    assert shadowed[-1].compared >= 200
    assert any(s.step_index == 1 and s.weights.canary == 100 for s in again)
    # Once weighted, the canary's answers reach clients and the router counts them.
    assert max(n for step, n in seen["v1-again"] if step == 1) > 0

    for broken in ("v1-shifted", "v1-permuted"):
        samples = timelines[f"digits-{broken}"]
        final = samples[-1]
        assert final.action is Action.ROLLBACK, final.message
        assert final.step_index == 0
        assert "agreement:" in final.message
        assert {s.weights.canary for s in samples} == {0}
        assert final.shadow is not None
        assert final.shadow.agreement is not None
        assert final.shadow.agreement < 0.9
        assert seen[broken], "the router was never read"
        assert {n for _, n in seen[broken]} == {0.0}, seen[broken]
