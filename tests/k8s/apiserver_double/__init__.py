"""A Kubernetes API server test double, served over HTTP on loopback.

It exists because no API server can run where the tests run, and the controller must still be
exercised through the official ``kubernetes`` client unchanged: the double speaks the REST API
(typed ``AppsV1Api``/``CoreV1Api`` paths and ``CustomObjectsApi`` paths, lists, watches,
patches, status and scale subresources) for the few resources the controller touches (Leases
among them, for its leader election), keeps
objects with the API server's versioning and conflict rules (`objects`), and validates every
object with `mlcanary.k8s.validation` so that a schema violation is a 422 as on a cluster.

What it adds for tests: every request is recorded as RBAC sees it (verb, group, resource,
subresource) so a test can hold the controller's real use against its Role; faults can be
injected (`fail_next`, `conflict_next`); and it plays the deployment controller and kubelet only
when asked (`mark_ready`), so a Deployment that never becomes ready is one nobody marks.

What it is not: no authentication, admission, defaulting, garbage collection, cluster-scoped or
discovery endpoints, and no pods.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from kubernetes import client

from tests.k8s.apiserver_double.objects import ObjectStore, Validator
from tests.k8s.apiserver_double.resources import ResourceType, find_resource
from tests.k8s.apiserver_double.server import Fault, RecordedRequest, RequestLog, make_server

__all__ = ["ApiServerDouble", "Fault", "RecordedRequest"]


def _default_validator(obj: dict[str, Any]) -> list[str]:
    from mlcanary.k8s.validation import validate_object

    return validate_object(obj)


def _deployments() -> ResourceType:
    rt = find_resource("apps", "v1", "deployments")
    assert rt is not None
    return rt


class ApiServerDouble:
    """The test double of the Kubernetes API server; a context manager that serves it."""

    def __init__(self, validate: Validator = _default_validator) -> None:
        self.store = ObjectStore(validate)
        self._log = RequestLog()
        self._server = make_server(self.store, self._log)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServerDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.store.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> ApiServerDouble:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def configuration(self) -> client.Configuration:
        """A client configuration that talks to this double (plain HTTP, no credentials)."""
        return client.Configuration(host=self.url)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._log.lock:
            return list(self._log.requests)

    def permissions_used(self, user_agent: str | None = None) -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) of every request so far, or of those whose
        User-Agent starts with ``user_agent`` (one client's, not the test's own requests)."""
        return {
            (r.api_group, r.rbac_resource, r.verb)
            for r in self.requests
            if user_agent is None or r.user_agent.startswith(user_agent)
        }

    def fail_next(
        self,
        code: int,
        *,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        times: int = 1,
        user_agent: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``code`` (409: a conflict);
        ``user_agent``: only those of the clients whose User-Agent starts with it."""
        fault = Fault(code, verb, resource, subresource, times, user_agent)
        with self._log.lock:
            self._log.faults.append(fault)
        return fault

    def conflict_next_status_writes(self, resource: str, times: int = 1) -> Fault:
        return self.fail_next(
            409, verb="update", resource=resource, subresource="status", times=times
        )

    def mark_ready(self, namespace: str, name: str, ready: int | None = None) -> dict[str, Any]:
        """Report a Deployment's pods ready, as its controller and kubelets would: ``ready``
        of them (all of spec.replicas when None), the current generation observed."""
        return self.store.set_deployment_status(_deployments(), namespace, name, ready)

    def versions(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> list[dict[str, Any]]:
        """Every version one object has had, oldest first (since the last `compact`): the
        order of writes that the objects alone no longer show, such as a Lease's holders."""
        rt = find_resource(group, version, plural)
        assert rt is not None, f"the double does not serve {plural}.{group}/{version}"
        events = self.store.events_after(
            rt, namespace, 0, lambda obj: obj["metadata"]["name"] == name, wait_s=0
        )
        return [event.object for event in events]

    def compact(self) -> None:
        """Forget the change history: watches from an earlier resourceVersion get 410 Gone."""
        self.store.compact()
