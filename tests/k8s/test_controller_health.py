"""The controller's /healthz and /readyz, over HTTP, while its real loop runs against the API
server double; time moves on a fake monotonic clock, so nothing here waits for a bound."""

from __future__ import annotations

import threading
from datetime import datetime

import httpx
import pytest

from mlcanary.k8s.controller_health import HealthServer, LoopProgress
from mlcanary.rollout.metrics.base import Target
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.observations import Observation
from tests.k8s import scenarios
from tests.k8s.cluster import Cluster, rollout_document
from tests.rollout.test_controller import stream

STALE_AFTER_S = 60.0


class Monotonic:
    """A monotonic clock that only the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HangingProvider(ScriptedProvider):
    """Test double: a metrics source whose answer hangs until the test releases it, as a query
    without a timeout to an unresponsive server would."""

    def __init__(self) -> None:
        super().__init__(stream(60, 0.97))
        self.hanging = threading.Event()
        self.release = threading.Event()

    def observe(self, target: Target, now: datetime) -> Observation:
        self.hanging.set()
        self.release.wait(timeout=20)
        return super().observe(target, now)


def _get(port: int, path: str) -> tuple[int, str]:
    with httpx.Client(timeout=5) as client:
        response = client.get(f"http://127.0.0.1:{port}{path}")
    return response.status_code, response.text


def test_alive_from_the_start_ready_once_listed_and_kept_alive_by_the_loop(
    cluster: Cluster,
) -> None:
    cluster.install(rollout_document("gateway-api"))
    clock = Monotonic()
    progress = LoopProgress(STALE_AFTER_S, monotonic=clock)
    controller = cluster.controller(drain_s=0, watch_timeout_s=1, progress=progress)
    with HealthServer(progress, "127.0.0.1", 0) as health:
        assert _get(health.port, "/healthz") == (200, "ok\n")
        assert _get(health.port, "/readyz") == (
            503,
            "neither the rollouts listed nor the lease read yet\n",
        )
        with scenarios.looping(controller) as failures:
            scenarios.wait_for(lambda: _get(health.port, "/readyz") == (200, "ok: leading\n"))
            # Far past the bound: only a step the loop takes after this makes it healthy again.
            clock.now += 10 * STALE_AFTER_S
            scenarios.wait_for(lambda: _get(health.port, "/healthz") == (200, "ok\n"))
        assert _get(health.port, "/nothing")[0] == 404
    assert failures == []


def test_a_loop_stuck_in_a_tick_fails_liveness_until_it_moves_again(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    clock = Monotonic()
    progress = LoopProgress(STALE_AFTER_S, monotonic=clock)
    provider = HangingProvider()
    controller = cluster.controller(
        provider=provider, drain_s=0, watch_timeout_s=1, progress=progress
    )
    with (
        HealthServer(progress, "127.0.0.1", 0) as health,
        scenarios.looping(controller) as failures,
    ):
        try:
            assert provider.hanging.wait(timeout=20), "the loop never asked for metrics"
            clock.now += STALE_AFTER_S + 1
            status, message = _get(health.port, "/healthz")
            assert (status, message) == (503, "stalled: the loop made no progress for 61s\n")
            assert _get(health.port, "/readyz")[0] == 200  # it did list; it is stuck, not new
        finally:
            provider.release.set()
        scenarios.wait_for(lambda: _get(health.port, "/healthz")[0] == 200)
    assert failures == []


def test_a_bound_a_healthy_watch_could_exceed_is_refused(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match=r"stale_after_s: 30 must exceed the watch timeout"):
        cluster.controller(progress=LoopProgress(30), watch_timeout_s=30)
    with pytest.raises(ValueError, match=r"stale_after_s: 0 must be above 0"):
        LoopProgress(0)


def test_a_standby_is_alive_and_ready_while_it_tries_for_the_lease(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    provider = ScriptedProvider(stream(60, 0.97))
    clock = Monotonic()
    progress = LoopProgress(STALE_AFTER_S, monotonic=clock)
    with scenarios.replica(cluster, "a", provider) as leader:
        scenarios.wait_for(leader.leading.may_act)
        with (
            HealthServer(progress, "127.0.0.1", 0) as health,
            scenarios.replica(cluster, "b", provider, progress) as standby,
        ):
            standing_by = (200, "ok: standing by, a leads\n")
            scenarios.wait_for(lambda: _get(health.port, "/readyz") == standing_by)
            # Far past the bound: only a step the standby takes after this makes it healthy.
            clock.now += 10 * STALE_AFTER_S
            scenarios.wait_for(lambda: _get(health.port, "/healthz") == (200, "ok\n"))
            assert standby.writes(cluster.double.requests) == []
    assert leader.failures == standby.failures == []
