"""The controller scenarios, each on a fresh cluster; tests assert on what they return, and the
RBAC test runs them all to collect the requests the controller really makes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlcanary.k8s import crd
from mlcanary.k8s.controller import USER_AGENT, RolloutController
from mlcanary.k8s.status_store import COMMAND_ANNOTATION, ModelRolloutStatusStore
from mlcanary.rollout.commands import Command
from tests.k8s.cluster import NAME, NAMESPACE, Cluster, drive, rollout_document
from tests.rollout.test_controller import stream

Weights = dict[str, int]


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
