"""The in-cluster controller: watches ModelRollouts in one namespace and runs each one's rollout.

Each active ModelRollout gets the same `mlcanary.rollout.controller.Controller` as the local
mode, wired to Kubernetes adapters: the router named by ``spec.router.type`` (built by its
module in `routers`), the
Prometheus provider at ``spec.metrics.address``, the status subresource as the status store
(`status_store`) and the version Deployments as workloads (`workloads`). It ticks every
``spec.analysis.interval``. Everything a tick needs is read back from the cluster, so a
restarted or replaced controller resumes each rollout at the step and weights its status holds.

Why the official ``kubernetes`` client and not kopf: the work is one periodic tick per rollout,
not a reaction to each change, and its state already lives in the status subresource, which
kopf would want to manage itself (its progress storage and handler retries would sit beside the
controller's own); and the client alone is what the API test double can serve unchanged, so
every request the controller makes is exercised in tests and held against its Role.

How the objects are followed: a list, then a watch from the list's resourceVersion, restarted
when it times out; on 410 Gone (the resourceVersion was compacted away) the controller lists
again, and it lists again every ``resync_s`` anyway. A watch is open only until the next tick is
due, so one thread does everything and ticks are never late by more than a second.

How it stops: `RolloutController.run` ends once its ``stop`` event is set, and `interrupt` ends
the watch it may be waiting on at once (it shuts the watch's socket for reading), so a stop is
noticed within moments rather than when a watch of up to ``watch_timeout_s`` ends. A tick under
way is finished first, its status written, and no other rollout is ticked after it.

What ends a rollout's loop: reaching a finished phase (it starts again only when the spec's
generation changes, for example a new canary version), or the object's deletion. Deleting a
ModelRollout stops its analysis and changes nothing in the cluster: the route and Deployments
belong to the applied manifests, not to the rollout, and are left as the last tick set them
(abort the rollout first to send all traffic back to stable).

A rollout whose spec cannot run in a cluster (invalid, or failing `cluster_problems`: the
``local`` router, the ``scrape`` metrics provider) is marked Failed with the field and the
reason, and a Warning Event.

Each step the loop completes (a list, a rollout's tick, a watched change, a round of the loop)
is marked in ``progress`` (`controller_health`), which the liveness probe reads.

What a rollout's ticks decide is told as Events on its object (`events.EventNotifier`) and to
the targets of its ``spec.notifications`` (`mlcanary.notify`), their deliveries counted in
``notifications``, which the controller's /metrics serves. Closing a rollout's senders (its spec
changed, it was deleted) never waits for them: what they still hold is sent in the background.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError

from mlcanary.k8s import crd
from mlcanary.k8s.api_objects import custom_object
from mlcanary.k8s.cluster_rules import cluster_problems
from mlcanary.k8s.controller_health import LoopProgress
from mlcanary.k8s.events import EventNotifier, EventRecorder
from mlcanary.k8s.mirror import KubernetesMirror
from mlcanary.k8s.routers.kind import ApiContext, cluster_router
from mlcanary.k8s.status_store import ModelRolloutStatusStore
from mlcanary.k8s.workloads import KubernetesWorkloads
from mlcanary.metrics.kind import Sources, metrics_provider
from mlcanary.notify.counts import DeliveryCounts
from mlcanary.notify.dispatcher import DeliveryRules, dispatcher_for
from mlcanary.notify.gates import HttpGates
from mlcanary.rollout.clock import utcnow
from mlcanary.rollout.controller import Controller, TickOutcome, TickReport
from mlcanary.rollout.engine import refuse
from mlcanary.rollout.metrics.base import MetricsProvider
from mlcanary.rollout.notifications.base import NotifierGroup
from mlcanary.rollout.routers.base import Router
from mlcanary.rollout.spec import ModelRollout, SpecError, parse_spec
from mlcanary.rollout.status import FINISHED
from mlcanary.rollout.store.base import ConflictError

__all__ = [
    "USER_AGENT",
    "MetricsFactory",
    "RolloutController",
    "prometheus_metrics",
    "user_agent",
]

# The controller's requests are told apart by it in the API server's audit log (and in tests).
USER_AGENT = "mlcanary-controller"


def user_agent(identity: str | None) -> str:
    """``USER_AGENT``, naming the replica when there are several: which one acted is then in
    the audit log."""
    return USER_AGENT if identity is None else f"{USER_AGENT} ({identity})"


logger = logging.getLogger("mlcanary.k8s")

MetricsFactory = Callable[[ModelRollout], MetricsProvider]
_GONE = 410
# A rollout's senders are closed without waiting (see the module's docstring).
_DELIVERY = DeliveryRules(flush_s=0.0)


def prometheus_metrics(rollout: ModelRollout) -> MetricsProvider:
    """The metrics provider the spec names (`cluster_problems` has refused those that cannot
    serve a cluster): Prometheus at ``spec.metrics.address``."""
    return metrics_provider(rollout.spec.metrics, Sources())


def _parse(obj: dict[str, Any]) -> ModelRollout:
    """The spec as the local mode reads it, with the same field-named errors; the status (with
    Kubernetes' observedGeneration) is the store's business, not the spec's."""
    return parse_spec({k: v for k, v in obj.items() if k != "status"})


@dataclass
class _Managed:
    name: str
    uid: str | None
    generation: int
    controller: Controller
    due: datetime
    active: bool
    problem: str | None = None


class RolloutController:
    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        *,
        metrics: MetricsFactory = prometheus_metrics,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        drain_s: float = 10.0,
        conflict_retries: int = 3,
        resync_s: float = 300.0,
        watch_timeout_s: int = 30,
        progress: LoopProgress | None = None,
        identity: str | None = None,
        may_act: Callable[[], bool] = lambda: True,
        notifications: DeliveryCounts | None = None,
    ) -> None:
        """``drain_s``: how long the loser of a finished rollout keeps its pods after the route
        stopped sending it traffic, for the gateway to apply the change and requests to end.
        ``progress``: its bound must exceed ``watch_timeout_s``, the longest a healthy loop
        waits between two steps. ``identity``: the replica's, in its User-Agent. ``may_act``:
        whether this replica leads (`mlcanary.k8s.leading`); when it turns False no further
        tick starts and a tick under way writes nothing more (`ModelRolloutStatusStore`).
        ``notifications``: where the deliveries of every rollout's notifications are counted."""
        self.progress = progress or LoopProgress()
        if self.progress.stale_after_s <= watch_timeout_s:
            raise ValueError(
                f"stale_after_s: {self.progress.stale_after_s:g} must exceed the watch timeout"
                f" ({watch_timeout_s}s), or a healthy loop waiting on a watch looks stalled"
            )
        self.namespace = namespace
        self.user_agent = user_agent(identity)
        api_client.user_agent = self.user_agent
        self._custom = CustomObjectsApi(api_client)
        self._apps = AppsV1Api(api_client)
        self._may_act = may_act
        self.store = ModelRolloutStatusStore(self._custom, namespace, may_act)
        self.events = EventRecorder(CoreV1Api(api_client), namespace, clock)
        self.mirror = KubernetesMirror(CoreV1Api(api_client), namespace)
        self.notifications = notifications or DeliveryCounts()
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._drain = timedelta(seconds=drain_s)
        self._conflict_retries = conflict_retries
        self._resync_s = resync_s
        self._watch_timeout_s = watch_timeout_s
        self._managed: dict[str, _Managed] = {}
        self._watching: BaseHTTPResponse | None = None
        self._watching_lock = threading.Lock()

    @property
    def active(self) -> list[str]:
        """The rollouts being ticked."""
        return sorted(name for name, m in self._managed.items() if m.active)

    def _router(self, rollout: ModelRollout) -> Router:
        problems = cluster_problems(rollout.spec)
        if problems:
            raise SpecError(problems)
        context = ApiContext(self._custom, self._apps, self.namespace, rollout.spec)
        return cluster_router(rollout.spec.router.type).build(context)

    def _controller(self, rollout: ModelRollout, uid: str | None) -> Controller:
        router = self._router(rollout)
        notifier = NotifierGroup(
            [
                EventNotifier(self.events, rollout.metadata.name, uid),
                dispatcher_for(rollout, self.notifications, _DELIVERY),
            ]
        )
        return Controller(
            rollout=rollout,
            router=router,
            metrics=self._metrics(rollout),
            store=self.store,
            workloads=KubernetesWorkloads(
                self._apps,
                self.namespace,
                router_scales=cluster_router(rollout.spec.router.type).replica_total is not None,
            ),
            drain=self._drain,
            clock=self._clock,
            sleep=self._sleep,
            notifier=notifier,
            confirm=HttpGates(rollout) if rollout.spec.gates else None,
            mirror=self.mirror,
        )

    def observe(self, kind: str, obj: dict[str, Any]) -> None:
        """Take in one object as listed or watched (ADDED, MODIFIED, DELETED)."""
        metadata = obj["metadata"]
        name = metadata["name"]
        current = self._managed.get(name)
        if kind == "DELETED":
            if current is not None:
                self._forget(name)
                logger.info("ModelRollout %s deleted: its loop stopped", name)
            return
        generation = int(metadata.get("generation", 0))
        uid = metadata.get("uid")
        if current is not None and (current.uid, current.generation) == (uid, generation):
            return
        if current is not None:
            self._forget(name)
        status = obj.get("status") or {}
        # Finished with its loser retired: nothing left to do until the spec changes.
        settled = (
            status.get("observedGeneration") == generation
            and status.get("phase") in {p.value for p in FINISHED}
            and status.get("retireAt") is None
        )
        try:
            controller = self._controller(_parse(obj), uid)
        except SpecError as exc:
            if not settled:
                self._refuse(name, uid, str(exc))
            return
        self._managed[name] = _Managed(
            name, uid, generation, controller, self._clock(), not settled
        )

    def _forget(self, name: str) -> None:
        managed = self._managed.pop(name)
        managed.controller.close()

    def _refuse(self, name: str, uid: str | None, problem: str) -> None:
        """Mark a rollout that cannot run Failed, naming the field."""
        message = f"the spec cannot run in this cluster: {problem}"
        for _ in range(self._conflict_retries + 1):
            stored = self.store.load(name)
            if stored is None:
                return
            failed = refuse(stored.status, message, self._clock())
            try:
                self.store.save(name, failed, stored.revision)
            except ConflictError:
                continue
            break
        self.events.record(name, uid, "Warning", "InvalidSpec", message)
        logger.error("ModelRollout %s: %s", name, message)

    def sync(self) -> str:
        """List every ModelRollout and reconcile the managed set; the list's resourceVersion."""
        listing = custom_object(
            self._custom.list_namespaced_custom_object(
                crd.GROUP, crd.VERSION, self.namespace, crd.PLURAL
            ),
            "a list of ModelRollouts",
        )
        seen = set()
        for item in listing.get("items", []):
            seen.add(item["metadata"]["name"])
            self.observe("ADDED", item)
        for name in set(self._managed) - seen:
            self._forget(name)
        self.progress.listed()
        return str(listing["metadata"]["resourceVersion"])

    def _tick(self, managed: _Managed, started: datetime) -> TickReport | None:
        """One tick, repeated at once after a status write conflict (reload, decide again). The
        next is due an interval after ``started``, however long this one took."""
        report = None
        try:
            for _ in range(self._conflict_retries + 1):
                report = managed.controller.tick()
                if report.outcome is not TickOutcome.CONFLICTED or not self._may_act():
                    break
        except (ApiException, HTTPError, ValueError) as exc:
            # A bad answer for one rollout must not stop the others: reported, retried next tick.
            logger.exception("ModelRollout %s: tick failed", managed.name)
            self._problem(managed, f"tick failed: {exc}")
            return None
        finally:
            self.progress.beat()
        assert report is not None
        if not self._may_act():
            logger.warning("ModelRollout %s: no longer leading, the tick stopped", managed.name)
            return None
        interval = managed.controller.rollout.spec.analysis.interval
        managed.due = started + interval
        self._problem(managed, report.problem)
        if report.settled:
            managed.active = False
            logger.info("ModelRollout %s finished: %s", managed.name, report.status.phase.value)
        return report

    def _problem(self, managed: _Managed, problem: str | None) -> None:
        """A Warning Event when a problem appears or changes, not at every tick it lasts."""
        if problem is not None and problem != managed.problem:
            self.events.record(managed.name, managed.uid, "Warning", "TickProblem", problem)
            logger.warning("ModelRollout %s: %s", managed.name, problem)
        managed.problem = problem

    def tick_due(self, stop: threading.Event | None = None) -> list[TickReport]:
        """Tick every active rollout whose interval has passed; none once ``stop`` is set."""
        now = self._clock()
        due = [m for m in self._managed.values() if m.active and m.due <= now]
        reports = []
        for managed in due:
            if (stop is not None and stop.is_set()) or not self._may_act():
                break
            report = self._tick(managed, now)
            if report is not None:
                reports.append(report)
        return reports

    def run_once(self) -> list[TickReport]:
        """List, then tick every active rollout once, due or not (``controller --once``)."""
        self.sync()
        now = self._clock()
        for managed in self._managed.values():
            managed.due = now
        return self.tick_due()

    def _seconds_to_next_tick(self) -> float:
        dues = [m.due for m in self._managed.values() if m.active]
        if not dues:
            return float(self._watch_timeout_s)
        return max(0.0, (min(dues) - self._clock()).total_seconds())

    def run(self, stop: threading.Event, retry_s: float = 5.0) -> None:
        """List and watch until ``stop`` is set, ticking each rollout on its interval.

        An API server that cannot be reached is waited for (``retry_s`` between attempts), then
        everything is listed again: the rollouts' state is in their objects, nothing is lost.
        """
        version, listed = None, 0.0
        while not stop.is_set():
            self.progress.beat()
            try:
                if version is None or time.monotonic() - listed >= self._resync_s:
                    version, listed = self.sync(), time.monotonic()
                self.tick_due(stop)
                wait = min(self._seconds_to_next_tick(), self._watch_timeout_s)
                version = self._watch(version, max(1, round(wait)), stop)
            except ApiException as exc:
                if exc.status == _GONE:
                    logger.info("watch expired (410 Gone): listing again")
                else:
                    logger.warning("the API server answered %s: retrying", exc.status)
                    stop.wait(retry_s)
                version = None
            except HTTPError as exc:
                logger.warning("cannot reach the API server (%s): retrying", exc)
                stop.wait(retry_s)
                version = None

    def _watch(self, version: str, timeout_s: int, stop: threading.Event) -> str:
        """Take in changes until the watch times out, a tick is due, ``stop`` is set or
        `interrupt` cuts it short; the last resourceVersion seen.

        The stream is read here rather than through ``kubernetes.watch.Watch``, whose ``stop``
        cannot cut short a watch whose request is still on its way: this one is registered
        under a lock once its response exists, and ``stop`` is checked at that moment."""
        answer = self._custom.list_namespaced_custom_object(
            crd.GROUP, crd.VERSION, self.namespace, crd.PLURAL,
            watch=True, resource_version=version, timeout_seconds=timeout_s,
            _preload_content=False,
        )  # fmt: skip
        if not isinstance(answer, BaseHTTPResponse):
            raise ValueError("the API server answered a watch with something that is not a stream")
        with self._watching_lock:
            if not stop.is_set():
                self._watching = answer
        try:
            if self._watching is answer:
                version = self._events(answer, version, stop)
        except HTTPError:
            if not stop.is_set():
                raise  # not our interruption: the connection broke
        finally:
            with self._watching_lock:
                self._watching = None
            answer.close()
            answer.release_conn()
        return version

    def _events(self, stream: BaseHTTPResponse, version: str, stop: threading.Event) -> str:
        for line in iter_resp_lines(stream):  # type: ignore[no-untyped-call]
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") == "ERROR":  # 410 Gone among them: the caller lists again
                status = event.get("object") or {}
                reason = f"{status.get('reason')}: {status.get('message')}"
                raise ApiException(status=status.get("code"), reason=reason)
            obj = custom_object(event.get("object"), "a watch event")
            version = str(obj["metadata"]["resourceVersion"])
            self.observe(event["type"], obj)
            self.progress.beat()
            if stop.is_set() or self._seconds_to_next_tick() <= 0:
                break
        return version

    def interrupt(self) -> None:
        """End the watch `run` may be waiting on, at once; from any thread, a signal handler's
        too. Set ``run``'s stop event first: the loop then returns within moments, instead of
        when the watch would have timed out."""
        with self._watching_lock:
            if self._watching is not None:
                # The watch may have just ended and its connection gone back to the pool or
                # closed; there is nothing left to cut short then.
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    self._watching.shutdown()

    def close(self) -> None:
        for name in list(self._managed):
            self._forget(name)
