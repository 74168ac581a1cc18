"""The HTTP side of the API double: Kubernetes REST paths, verbs, patches, watches, faults.

``http.server`` in a thread rather than an ASGI server: requests are few and small, a watch is a
blocking loop over a condition variable, and a test can start and stop it without an event loop.
Watches answer with chunked JSON lines of ``{"type", "object"}`` like the real server, which is
what `kubernetes.watch.Watch` reads.

Patches: ``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json`` (RFC 6902,
with the jsonpatch library), and ``application/strategic-merge-patch+json`` treated as a merge
patch: that differs from the real server only for lists with merge keys (containers, ports),
which nothing here patches. Apply patches (server-side apply) are refused with 415.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonpatch
import jsonpointer

from tests.k8s.apiserver_double.errors import ApiError
from tests.k8s.apiserver_double.objects import ObjectStore
from tests.k8s.apiserver_double.resources import ResourceType, find_resource
from tests.k8s.apiserver_double.selectors import (
    Matcher,
    parse_field_selector,
    parse_label_selector,
)

__all__ = ["Fault", "RecordedRequest", "RequestLog", "make_server"]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_WATCH_TIMEOUT_S = 60
_WATCH_POLL_S = 0.2


@dataclass(frozen=True)
class RecordedRequest:
    """One request as RBAC sees it: the verb, API group, resource and subresource."""

    verb: str
    api_group: str
    resource: str
    subresource: str | None
    namespace: str
    name: str | None
    user_agent: str = ""

    @property
    def rbac_resource(self) -> str:
        """``deployments`` or ``deployments/scale``: how a Role's rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with ``code`` instead of serving them.

    None matches anything; ``user_agent`` matches the User-Agents it starts (one client cut
    off from the server, the others served); a 409 is answered as a resourceVersion conflict.
    """

    code: int
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    times: int = 1
    user_agent: str | None = None

    def matches(self, request: RecordedRequest) -> bool:
        return (
            self.times > 0
            and self.verb in (None, request.verb)
            and self.resource in (None, request.resource)
            and self.subresource in (None, request.subresource)
            and (self.user_agent is None or request.user_agent.startswith(self.user_agent))
        )


@dataclass
class RequestLog:
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: RecordedRequest) -> Fault | None:
        with self.lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None:
                fault.times -= 1
            return fault


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 in its few lines, rather than a dependency: objects merge, null deletes, any
    other value (lists included) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class _Target:
    rt: ResourceType
    version: str
    namespace: str
    name: str | None
    subresource: str | None


def _parse_path(path: str) -> _Target:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({path})"
        )
    if len(rest) < 3 or rest[0] != "namespaces" or len(rest) > 5:
        raise ApiError(404, "NotFound", f"only namespaced resources are served here ({path})")
    rt = find_resource(group, version, rest[2])
    if rt is None:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({path})"
        )
    subresource = rest[4] if len(rest) == 5 else None
    allowed = {None, *(("status",) if rt.has_status else ()), *(("scale",) if rt.has_scale else ())}
    if subresource not in allowed:
        raise ApiError(404, "NotFound", f"{rt.plural} has no subresource {subresource!r}")
    return _Target(rt, version, rest[1], rest[3] if len(rest) >= 4 else None, subresource)


def _verb(method: str, target: _Target, query: dict[str, str]) -> str:
    if target.name is None:
        verbs = {
            "GET": "watch" if query.get("watch") in ("true", "1") else "list",
            "POST": "create",
        }
    else:
        verbs = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs:
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")
    return verbs[method]


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    metadata = deployment["metadata"]
    labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: metadata[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": {"replicas": deployment.get("spec", {}).get("replicas", 1)},
        "status": {
            "replicas": deployment.get("status", {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is what tests read."""

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self, raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from None

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""  # read first: the connection is reused
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            target = _parse_path(url.path)
            verb = _verb(method, target, query)
            request = RecordedRequest(
                verb, target.rt.group, target.rt.plural, target.subresource,
                target.namespace, target.name, self.headers.get("User-Agent") or "",
            )  # fmt: skip
            fault = self.server.log.record(request)
            body = self._body(raw)
            if fault is not None:
                raise _fault_error(fault, target)
            if verb == "watch":
                self._watch(target, query)
                return
            code, answer = self._serve(verb, target, query, body)
            self._send(code, answer)
        except ApiError as error:
            self._send(error.code, error.status())

    def _serve(
        self, verb: str, target: _Target, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        store, rt, ns = self.server.store, target.rt, target.namespace
        if verb == "list":
            matches = _selector(query)
            items, version = store.list_objects(rt, ns, matches)
            return 200, {
                "apiVersion": rt.api_version(target.version),
                "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": str(version)},
                "items": items,
            }
        if verb == "create":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body must be a JSON object")
            return 201, store.create(rt, target.version, ns, body)
        assert target.name is not None
        name = target.name
        if verb == "get":
            obj = store.get(rt, ns, name)
            return 200, _scale(obj) if target.subresource == "scale" else obj
        if verb == "delete":
            return 200, store.delete(rt, ns, name)
        change = self._change(verb, body)
        if target.subresource == "scale":
            return 200, _scale(store.write(rt, ns, name, lambda obj: _rescale(obj, change)))
        return 200, store.write(rt, ns, name, change, target.subresource)

    def _change(self, verb: str, body: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if verb == "update":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body must be a JSON object")
            return lambda _current: copy.deepcopy(body)
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", f"a {kind} body must be a JSON object")
            return lambda current: merge_patch(current, body)
        if kind == JSON_PATCH:
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            return lambda current: _json_patch(current, body)
        raise ApiError(415, "UnsupportedMediaType", f"the patch type {kind!r} is not supported")

    def _watch(self, target: _Target, query: dict[str, str]) -> None:
        store = self.server.store
        timeout = min(int(query.get("timeoutSeconds") or _WATCH_TIMEOUT_S), _WATCH_TIMEOUT_S)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._events(store, target, query, deadline)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client cut the watch short

    def _events(
        self, store: ObjectStore, target: _Target, query: dict[str, str], deadline: float
    ) -> None:
        rt, ns, matches = target.rt, target.namespace, _selector(query)
        start = query.get("resourceVersion") or "0"
        try:
            if start == "0":
                items, since = store.list_objects(rt, ns, matches)
                for item in items:
                    self._chunk({"type": "ADDED", "object": item})
            elif start.isdigit():
                since = int(start)
            else:
                raise ApiError(400, "BadRequest", f"resourceVersion {start!r} is not valid")
            while not store.closed and (remaining := deadline - time.monotonic()) > 0:
                for event in store.events_after(
                    rt, ns, since, matches, min(remaining, _WATCH_POLL_S)
                ):
                    self._chunk({"type": event.type, "object": event.object})
                    since = event.resource_version
        except ApiError as error:
            self._chunk({"type": "ERROR", "object": error.status()})

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _selector(query: dict[str, str]) -> Matcher:
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"))
    return lambda obj: labels(obj) and fields(obj)


def _json_patch(current: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = jsonpatch.JsonPatch(operations).apply(current)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(422, "Invalid", f"the JSON patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from None
    return result


def _rescale(
    deployment: dict[str, Any], change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """A write to /scale: only spec.replicas carries over, under the Scale's resourceVersion."""
    scale = change(_scale(deployment))
    replicas = scale.get("spec", {}).get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ApiError(422, "Invalid", f"spec.replicas: must be an integer >= 0, not {replicas!r}")
    deployment.setdefault("spec", {})["replicas"] = replicas
    deployment["metadata"]["resourceVersion"] = scale.get("metadata", {}).get("resourceVersion")
    return deployment


def _fault_error(fault: Fault, target: _Target) -> ApiError:
    name = target.name or ""
    if fault.code == HTTPStatus.CONFLICT:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {target.rt.plural} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again (injected)",
            name=name,
            kind=target.rt.plural,
            group=target.rt.group,
        )
    try:
        reason = HTTPStatus(fault.code).phrase.replace(" ", "")
    except ValueError:
        reason = "Failure"
    return ApiError(fault.code, reason, f"injected failure ({fault.code})", name=name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: ObjectStore, log: RequestLog) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store
        self.log = log


def make_server(store: ObjectStore, log: RequestLog) -> ThreadingHTTPServer:
    return _Server(store, log)
