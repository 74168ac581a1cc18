"""The controller scenarios, each on a fresh cluster; tests assert on what they return, and the
RBAC test runs them all to collect the requests the controller really makes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlcanary.k8s import crd, naming
from mlcanary.k8s.controller import USER_AGENT, RolloutController, user_agent
from mlcanary.k8s.controller_health import LoopProgress
from mlcanary.k8s.leader import LeaseSettings
from mlcanary.k8s.leading import LeadingController
from mlcanary.k8s.status_store import COMMAND_ANNOTATION, ModelRolloutStatusStore
from mlcanary.rollout.commands import Command
from mlcanary.rollout.metrics.fake import ScriptedProvider
from tests.k8s.apiserver_double import RecordedRequest
from tests.k8s.cluster import INTERVAL_S, NAME, NAMESPACE, Cluster, drive, rollout_document
from tests.rollout.test_controller import stream

Weights = dict[str, int]
# Leases short enough for a test to see a takeover, long enough that a leader on a machine busy
# with other work does not miss its renewals (2.5 s of them).
FAST_LEASE = {"lease_duration": 3.0, "renew_deadline": 2.5, "retry_period": 0.25}
READS = {"get", "list", "watch"}


@dataclass
class Outcome:
    status: dict[str, Any]
    weights: list[Weights] = field(default_factory=list)  # each change, in order
    replicas: dict[str, int] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    permissions: set[tuple[str, str, str]] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)


def _changes(read: Callable[[], Weights]) -> tuple[list[Weights], Callable[[], None]]:
    seen: list[Weights] = []

    def observe() -> None:
        current = read()
        if not seen or seen[-1] != current:
            seen.append(current)

    return seen, observe


def _outcome(cluster: Cluster, weights: list[Weights], **extra: Any) -> Outcome:
    return Outcome(
        status=cluster.status(),
        weights=weights,
        replicas=cluster.replicas(),
        events=cluster.events(),
        permissions=cluster.double.permissions_used(USER_AGENT),
        extra=extra,
    )


def _reader(cluster: Cluster, router: str) -> Callable[[], Weights]:
    if router == "gateway-api":
        return cluster.httproute_weights
    if router == "istio":
        return cluster.virtualservice_weights
    return cluster.replicas


def rollout(
    cluster: Cluster, router: str = "gateway-api", canary_accuracy: float = 0.97, **fields: Any
) -> Outcome:
    """A whole rollout on the fake clock; the routing object's weights after every tick."""
    cluster.install(rollout_document(router, **fields))
    weights, record = _changes(_reader(cluster, router))

    def observe() -> None:
        record()
        if router == "replicas":  # the kubelets: pods of a scaled Deployment become ready
            cluster.mark_ready("v1")
            cluster.mark_ready("v2")

    observe()
    controller = cluster.controller(stream(60, canary_accuracy), drain_s=0)
    drive(cluster, controller, observe)
    controller.close()
    return _outcome(cluster, weights)


def status_conflicts(cluster: Cluster, conflicts: int) -> Outcome:
    """The first tick meets ``conflicts`` injected 409s on its status write."""
    cluster.install(rollout_document("gateway-api"))
    controller = cluster.controller(drain_s=0)
    controller.sync()
    cluster.double.conflict_next_status_writes(crd.PLURAL, conflicts)
    reports = controller.tick_due()
    writes = [
        r
        for r in cluster.double.requests
        if r.rbac_resource == f"{crd.PLURAL}/status" and r.verb == "update"
    ]
    controller.close()
    return _outcome(
        cluster, [cluster.httproute_weights()], reports=reports, status_writes=len(writes)
    )


def restart(cluster: Cluster, first_ticks: int) -> Outcome:
    """One controller ticks ``first_ticks`` times and is dropped; a new one takes over."""
    cluster.install(rollout_document("gateway-api"))
    script = stream(60, 0.97, rate=300)  # slow enough to stop in the middle of a step
    first = cluster.controller(script[:first_ticks], drain_s=0)
    first.sync()
    for _ in range(first_ticks):
        first.tick_due()
        cluster.clock.sleep(10)
    first.close()
    before = cluster.status()
    weights, observe = _changes(cluster.httproute_weights)
    observe()
    second = cluster.controller(script[first_ticks:], drain_s=0)
    second.sync()
    second.tick_due()
    after_one_tick = cluster.status()
    cluster.clock.sleep(10)
    drive(cluster, second, observe)
    second.close()
    return _outcome(cluster, weights, before=before, after_one_tick=after_one_tick)


def never_ready(cluster: Cluster) -> Outcome:
    """The canary's Deployment exists, and no pod of it ever reports ready."""
    cluster.install(rollout_document("gateway-api"), ready=["v1"])
    weights, observe = _changes(cluster.httproute_weights)
    observe()
    controller = cluster.controller(drain_s=0)
    drive(cluster, controller, observe)
    controller.close()
    return _outcome(cluster, weights)


def command(cluster: Cluster, word: str) -> Outcome:
    """A person annotates the rollout after its first tick."""
    cluster.install(rollout_document("gateway-api"))
    controller = cluster.controller(drain_s=0)
    controller.sync()
    controller.tick_due()
    ModelRolloutStatusStore(cluster.custom, NAMESPACE).request(NAME, Command(word))  # a person
    weights, observe = _changes(cluster.httproute_weights)
    observe()
    history = []
    for _ in range(3):
        cluster.clock.sleep(10)
        controller.tick_due()
        observe()
        history.append(cluster.status()["phase"])
    controller.close()
    annotation = cluster.rollout()["metadata"]["annotations"][COMMAND_ANNOTATION]
    return _outcome(cluster, weights, phases=history, annotation=annotation)


def invalid_spec(cluster: Cluster) -> Outcome:
    """A rollout the API server accepts and the controller cannot run: the local router."""
    document = rollout_document("gateway-api")
    cluster.install(document)
    cluster.custom.patch_namespaced_custom_object(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
        {"spec": {"router": {"type": "local"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    controller = cluster.controller(drain_s=0)
    controller.sync()
    active = controller.active
    controller.close()
    return _outcome(cluster, [cluster.httproute_weights()], active=active)


@contextmanager
def looping(controller: RolloutController, wait_s: float = 20.0) -> Iterator[list[BaseException]]:
    """The real loop (list, watch, tick) in a thread while the block runs; its failures."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            controller.run(stop, retry_s=0.1)
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(timeout=wait_s)
        if thread.is_alive():
            failures.append(AssertionError("the loop did not stop"))
        controller.close()


def deletion(cluster: Cluster, wait_s: float = 20.0) -> Outcome:
    """The rollout is deleted while the loop runs it."""
    cluster.install(rollout_document("gateway-api"))
    controller = cluster.controller(drain_s=0, watch_timeout_s=1)
    with looping(controller, wait_s) as failures:
        wait_for(lambda: cluster.httproute_weights() == {"v1": 90, "v2": 10}, wait_s)
        route_before = cluster.httproute_weights()
        cluster.custom.delete_namespaced_custom_object(
            crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME
        )
        wait_for(lambda: NAME not in controller.active, wait_s)
        seen = len(cluster.double.requests)
        cluster.clock.sleep(60)  # several intervals due, had the loop not stopped
        time.sleep(1.5)  # the loop comes round at least once more (its watches last 1 s)
        later = [r for r in cluster.double.requests[seen:] if r.user_agent.startswith(USER_AGENT)]
    return Outcome(
        status={},
        weights=[route_before, cluster.httproute_weights()],
        replicas=cluster.replicas(),
        permissions=cluster.double.permissions_used(USER_AGENT),
        extra={"failures": failures, "later": later},
    )


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s:g}s")
        time.sleep(0.05)


@dataclass
class Replica:
    """One controller replica in a thread: its elector and its loop, as its process runs them."""

    identity: str
    leading: LeadingController
    rollouts: RolloutController
    failures: list[BaseException] = field(default_factory=list)

    @property
    def user_agent(self) -> str:
        return user_agent(self.identity)

    def writes(self, requests: list[RecordedRequest]) -> list[RecordedRequest]:
        return writes(requests, self.identity)


def writes(requests: list[RecordedRequest], identity: str | None) -> list[RecordedRequest]:
    """What the replica ``identity`` (None: a lone controller) changed beside the Lease: what
    acting on rollouts means."""
    return [
        r
        for r in requests
        if r.user_agent == user_agent(identity) and r.verb not in READS and r.resource != "leases"
    ]


@contextmanager
def replica(
    cluster: Cluster,
    identity: str,
    provider: ScriptedProvider,
    progress: LoopProgress | None = None,
) -> Iterator[Replica]:
    """A replica that stands by or leads while the block runs, then stops as on SIGTERM."""
    progress = progress or LoopProgress()
    settings = LeaseSettings(naming.CONTROLLER, NAMESPACE, identity, **FAST_LEASE)
    leading = LeadingController(settings, cluster.double.configuration(), progress)
    rollouts = cluster.controller(
        provider=provider,
        drain_s=0,
        watch_timeout_s=1,
        progress=progress,
        identity=identity,
        may_act=leading.may_act,
    )
    running = Replica(identity, leading, rollouts)

    def serve() -> None:
        try:
            leading.run(rollouts)
        except BaseException as exc:  # handed to the test
            running.failures.append(exc)

    thread = threading.Thread(target=serve, name=f"replica-{identity}")
    thread.start()
    try:
        yield running
    finally:
        leading.stop()
        thread.join(timeout=20)
        if thread.is_alive():
            running.failures.append(AssertionError(f"replica {identity} did not stop"))
        rollouts.close()


def next_tick(cluster: Cluster, timeout_s: float = 20.0) -> dict[str, Any]:
    """Move the fake clock one interval on and wait for the leader's tick; its status."""
    before = cluster.status().get("lastAnalysisAt")
    cluster.clock.sleep(INTERVAL_S)
    wait_for(lambda: cluster.status().get("lastAnalysisAt") != before, timeout_s)
    return cluster.status()


def takeover(cluster: Cluster) -> Outcome:
    """Replica "a" leads and takes the rollout to its second step while "b" stands by; then
    "a" is cut off from the API server, as a crashed pod or a partitioned node is, and "b"
    takes over and finishes the rollout."""
    cluster.install(rollout_document("gateway-api"))
    # One script for both: only the replica that acts reads it, so it goes on where it was.
    provider = ScriptedProvider(stream(60, 0.97, rate=300))
    with replica(cluster, "a", provider) as a:
        wait_for(lambda: cluster.status().get("phase") == "Progressing")
        with replica(cluster, "b", provider) as b:
            wait_for(lambda: b.leading.elector.holder == "a")
            while cluster.status()["stepIndex"] < 1:
                next_tick(cluster)
            # The tick's last write is its Event: after it, the tick is over.
            wait_for(lambda: ("Normal", "Advanced") in [e[:2] for e in cluster.events()])
            before, route_before = cluster.status(), cluster.httproute_weights()
            cut = len(cluster.double.requests)
            cluster.double.fail_next(503, user_agent=a.user_agent, times=1_000_000)
            started = time.monotonic()
            wait_for(b.leading.may_act)
            takeover_s = time.monotonic() - started
            b_leads = len(cluster.double.requests)
            a_leads_still = a.leading.may_act()
            lease_at_takeover = cluster.lease()
            route_at_takeover = cluster.httproute_weights()
            after = next_tick(cluster)
            while cluster.status()["phase"] == "Progressing":
                next_tick(cluster)
            requests = cluster.double.requests
    return _outcome(
        cluster,
        [route_before, route_at_takeover, cluster.httproute_weights()],
        before=before,
        after_one_tick=after,
        takeover_s=takeover_s,
        a_leads_still=a_leads_still,
        lease_at_takeover=lease_at_takeover,
        holders=cluster.lease_holders(),
        a_before=a.writes(requests[:cut]),
        a_after=a.writes(requests[b_leads:]),
        b_before=b.writes(requests[:cut]),
        b_after=b.writes(requests[cut:]),
        failures=a.failures + b.failures,
    )
