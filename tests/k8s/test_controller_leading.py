"""Controller replicas against the API double: one acts while the others stand by; a leader
that stops hands over at once, one that dies is replaced within its lease, and each new leader
resumes the rollout where it was. In threads (`scenarios.takeover`), then as processes, the
way their pods run them, stopped with SIGTERM and SIGKILL."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mlcanary.rollout.metrics.base import Target
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.observations import Observation
from tests.k8s.apiserver_double import RecordedRequest
from tests.k8s.cluster import INTERVAL_S, Cluster, rollout_document, running_cluster
from tests.k8s.controller_process import (
    FAST_LEASE_FLAGS,
    ControllerProcess,
    PrometheusStub,
    controller_process,
)
from tests.k8s.scenarios import FAST_LEASE, Outcome, wait_for, writes
from tests.rollout.test_controller import stream

LEASE_S = FAST_LEASE["lease_duration"]
RETRY_S = FAST_LEASE["retry_period"]
# A standby sees the last renewal within 1.2 retry periods and tries every 1.0 to 1.2 of them
# once the lease has run out (`mlcanary.k8s.leader`); the margin is for a loaded machine.
TAKEOVER_BOUND_S = LEASE_S + 2.4 * RETRY_S + 3.0
# Long enough that a watch lasts it, far beyond the bounds asserted on stopping.
INTERVAL = "30s"
STOPPED_WITHIN_S = 10.0


def test_of_two_replicas_only_the_leader_acts(takeover: Outcome) -> None:
    assert takeover.extra["failures"] == []
    assert takeover.extra["a_before"]  # the leader wrote statuses and moved the route
    assert takeover.extra["b_before"] == []  # the standby changed nothing meanwhile


def test_a_leader_cut_off_stops_acting_before_the_standby_takes_over(takeover: Outcome) -> None:
    assert not takeover.extra["a_leads_still"]  # at the moment "b" began to lead
    assert takeover.extra["a_after"] == []  # and no write attempted since
    assert LEASE_S - RETRY_S <= takeover.extra["takeover_s"] <= TAKEOVER_BOUND_S
    spec = takeover.extra["lease_at_takeover"]["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert takeover.extra["holders"] == ["a", "b", ""]  # "b" handed back as it stopped


def test_the_new_leader_resumes_the_rollout_at_its_step_and_weights(takeover: Outcome) -> None:
    before, after = takeover.extra["before"], takeover.extra["after_one_tick"]
    assert (before["stepIndex"], before["weights"]) == (1, {"stable": 0, "canary": 100})
    assert (after["stepIndex"], after["weights"]) == (before["stepIndex"], before["weights"])
    assert after["stepStartedAt"] == before["stepStartedAt"]  # the step was not restarted
    assert after["history"][: len(before["history"])] == before["history"]
    route_before, route_at_takeover, route_at_end = takeover.weights
    assert route_before == route_at_takeover == {"v1": 0, "v2": 100}
    assert takeover.extra["b_after"]  # and it acted: statuses, the route
    assert takeover.status["phase"] == "Succeeded"
    assert route_at_end["v2"] == 100


class LeaseLostDuringQuery(ScriptedProvider):
    """Test double: metrics whose second query outlasts the replica's lease, so the replica
    stops leading while that tick waits on it."""

    def __init__(self) -> None:
        super().__init__(stream(60, 0.97))
        self.leads = True

    def observe(self, target: Target, now: datetime) -> Observation:
        self.leads = not self.targets  # still leading during the first query only
        return super().observe(target, now)


def test_a_tick_under_way_when_the_lease_is_lost_decides_nothing(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    provider = LeaseLostDuringQuery()
    controller = cluster.controller(provider=provider, drain_s=0, may_act=lambda: provider.leads)
    controller.sync()
    assert len(controller.tick_due()) == 1  # while it leads
    status, route, events = cluster.status(), cluster.httproute_weights(), cluster.events()
    seen = len(cluster.double.requests)
    cluster.clock.sleep(INTERVAL_S)
    assert controller.tick_due() == []
    controller.close()
    assert not provider.leads
    assert writes(cluster.double.requests[seen:], None) == []
    assert (cluster.status(), cluster.httproute_weights(), cluster.events()) == (
        status,
        route,
        events,
    )
    assert route == {"v1": 90, "v2": 10}


@dataclass
class Story:
    """Three controller processes, one rollout (metrics with no series: it holds its step)."""

    leaders: list[str] = field(default_factory=list)  # in the order they led
    codes: dict[str, int | None] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)  # after the 2nd and 3rd tick
    routes: list[dict[str, int]] = field(default_factory=list)
    first_stop_s: float = 0.0
    last_stop_s: float = 0.0
    takeover_s: float = 0.0
    writes_before_first_stop: list[RecordedRequest] = field(default_factory=list)
    status_writes_after_sigterm: list[RecordedRequest] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)


def _next_leader(
    cluster: Cluster, replicas: dict[str, ControllerProcess], story: Story, timeout_s: float = 60
) -> ControllerProcess:
    """Wait until a replica other than the last leader holds the lease; that replica."""

    def holder() -> str:
        holders = cluster.lease_holders()
        return holders[-1] if holders else ""

    wait_for(lambda: holder() in replicas and holder() not in story.leaders[-1:], timeout_s)
    story.leaders.append(holder())
    return replicas[holder()]


def _ticks(cluster: Cluster) -> int:
    return len(cluster.status().get("history", []))


def _play(cluster: Cluster, prometheus: PrometheusStub, folder: Path, story: Story) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["metrics"]["address"] = prometheus.url
    document["spec"]["analysis"].update(interval=INTERVAL, maxDuration="10m")
    cluster.install(document)
    prometheus.hold()  # the first tick waits on its first query
    with ExitStack() as stack:
        replicas = {
            name: stack.enter_context(
                controller_process(cluster.double.url, folder, name, *FAST_LEASE_FLAGS)
            )
            for name in ("a", "b", "c")
        }
        # SIGTERM the first leader in the middle of its first tick.
        wait_for(prometheus.held.is_set, 60)
        first = _next_leader(cluster, replicas, story)
        story.writes_before_first_stop = [
            w for name in replicas if name != first.identity
            for w in writes(cluster.double.requests, name)
        ]  # fmt: skip
        signalled = len(cluster.double.requests)
        started = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the signal arrives while the tick waits on Prometheus
        prometheus.release()
        first.process.wait(timeout=60)
        story.first_stop_s = time.monotonic() - started
        story.status_writes_after_sigterm = [
            r
            for r in writes(cluster.double.requests[signalled:], first.identity)
            if r.rbac_resource == "modelrollouts/status"
        ]
        story.routes.append(cluster.httproute_weights())
        # The next leader took the handed-back lease; SIGKILL it once it has ticked.
        second = _next_leader(cluster, replicas, story)
        wait_for(lambda: _ticks(cluster) == 2)
        story.statuses.append(cluster.status())
        story.routes.append(cluster.httproute_weights())
        second.process.kill()
        killed = time.monotonic()
        second.process.wait(timeout=60)
        third = _next_leader(cluster, replicas, story, 30)
        story.takeover_s = time.monotonic() - killed
        wait_for(lambda: _ticks(cluster) == 3)
        story.statuses.append(cluster.status())
        story.routes.append(cluster.httproute_weights())
        # SIGTERM the last one while it waits on its watch, until its next tick in 30 s.
        time.sleep(1.0)
        started = time.monotonic()
        third.process.send_signal(signal.SIGTERM)
        third.process.wait(timeout=60)
        story.last_stop_s = time.monotonic() - started
        story.codes = {name: running.process.returncode for name, running in replicas.items()}
        story.logs = {name: running.output() for name, running in replicas.items()}
    story.holders = cluster.lease_holders()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    told = Story()
    with running_cluster() as cluster, PrometheusStub() as prometheus:
        _play(cluster, prometheus, tmp_path_factory.mktemp("replicas"), told)
    return told


def test_the_leader_alone_acts_among_three_processes(story: Story) -> None:
    assert story.writes_before_first_stop == []
    assert len(set(story.leaders)) == 3, story.logs


def test_sigterm_mid_tick_finishes_the_tick_writes_its_status_and_hands_back(
    story: Story,
) -> None:
    first, second, _ = story.leaders
    assert story.codes[first] == 0, story.logs[first]
    assert len(story.status_writes_after_sigterm) == 1  # the tick under way, written whole
    assert story.first_stop_s < STOPPED_WITHIN_S
    assert story.holders[:3] == [first, "", second]  # handed back, then taken at once


def test_a_killed_leader_is_replaced_within_its_lease_at_the_same_step_and_weights(
    story: Story,
) -> None:
    _, second, third = story.leaders
    assert story.codes[second] == -signal.SIGKILL
    assert LEASE_S - RETRY_S <= story.takeover_s <= TAKEOVER_BOUND_S
    assert story.holders[2:4] == [second, third]  # no hand-back from a killed process
    assert [len(s["history"]) for s in story.statuses] == [2, 3]  # one tick per leader
    first_tick = story.statuses[-1]["history"][0]
    for status in story.statuses:  # each new leader went on with the first leader's step
        assert (status["stepIndex"], status["weights"]) == (0, {"stable": 90, "canary": 10})
        assert status["stepStartedAt"] == first_tick["at"]
    assert story.routes == [{"v1": 90, "v2": 10}] * 3


def test_sigterm_while_watching_exits_far_sooner_than_the_watch_and_hands_back(
    story: Story,
) -> None:
    third = story.leaders[2]
    assert story.codes[third] == 0, story.logs[third]
    assert story.last_stop_s < STOPPED_WITHIN_S  # its watch would have lasted until its tick
    assert story.holders[-2:] == [third, ""]
