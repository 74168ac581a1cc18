"""The API double's object store: versions, conflicts, the status subresource, watch history.

It follows the API server's rules that a controller's correctness depends on, and nothing more:

* one global ``resourceVersion`` counter, bumped by every change, stamped on the changed object;
  a write naming another resourceVersion than the stored one is a 409 Conflict, a write without
  one is unconditional (as for Deployments; the double does not refuse it for custom resources)
  except for kinds that refuse it with 422, as Leases do;
* MicroTime fields (a Lease's ``acquireTime``, ``renewTime``) without exactly six fraction
  digits are refused with 400, as the API server's decoder does, before anything else;
* ``metadata.generation`` starts at 1 and moves only when the spec changes;
* with a status subresource, a write to the object keeps the stored status and a write to
  ``/status`` changes only the status; on create the status is dropped;
* a write that changes nothing is answered with the stored object and bumps nothing;
* every object is checked by the validator before it is stored (422 Invalid otherwise);
* every change is kept in a history that watches replay from a resourceVersion; `compact`
  forgets it, after which a watch from an older version gets 410 Gone, as after etcd compaction.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.k8s.apiserver_double.errors import ApiError, invalid
from tests.k8s.apiserver_double.resources import ResourceType
from tests.k8s.apiserver_double.selectors import Matcher

__all__ = ["ObjectStore", "Validator", "WatchEvent"]

Validator = Callable[[dict[str, Any]], list[str]]
Key = tuple[str, str, str, str]  # group, plural, namespace, name
_SERVER_FIELDS = ("uid", "creationTimestamp", "generation", "resourceVersion", "name", "namespace")
_MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    group: str
    plural: str
    namespace: str
    object: dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The API server's decoding of MicroTime fields: Go's layout with six fraction digits."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for field in rt.micro_times:
        value = spec.get(field)
        if value is not None and not (isinstance(value, str) and _MICRO_TIME.fullmatch(value)):
            raise ApiError(
                400,
                "BadRequest",
                f'{rt.kind} in version "v1" cannot be handled as a {rt.kind}: parsing time '
                f'"{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse',
            )


def _body_of(obj: dict[str, Any]) -> dict[str, Any]:
    """What generation counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in {"metadata", "status"}}


class ObjectStore:
    def __init__(self, validate: Validator) -> None:
        self._validate = validate
        self._objects: dict[Key, dict[str, Any]] = {}
        self._history: list[WatchEvent] = []
        self._version = 0
        self._compacted = 0
        self._changed = threading.Condition()
        self.closed = False

    @property
    def resource_version(self) -> int:
        with self._changed:
            return self._version

    def _key(self, rt: ResourceType, namespace: str, name: str) -> Key:
        return (rt.group, rt.plural, namespace, name)

    def _missing(self, rt: ResourceType, name: str) -> ApiError:
        resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
        return ApiError(
            404,
            "NotFound",
            f'{resource} "{name}" not found',
            name=name,
            kind=rt.plural,
            group=rt.group,
        )

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._changed:
            obj = self._objects.get(self._key(rt, namespace, name))
            if obj is None:
                raise self._missing(rt, name)
            return copy.deepcopy(obj)

    def list_objects(
        self, rt: ResourceType, namespace: str, matches: Matcher
    ) -> tuple[list[dict[str, Any]], int]:
        with self._changed:
            items = [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in sorted(self._objects.items())
                if (group, plural, ns) == (rt.group, rt.plural, namespace) and matches(obj)
            ]
            return items, self._version

    def _record(self, kind: str, rt: ResourceType, namespace: str, obj: dict[str, Any]) -> None:
        """Store the change in the history and wake the watches (the lock is held)."""
        self._history.append(
            WatchEvent(self._version, kind, rt.group, rt.plural, namespace, copy.deepcopy(obj))
        )
        self._changed.notify_all()

    def _check(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        problems = self._validate(obj)
        if problems:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), problems)

    def create(
        self, rt: ResourceType, version: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        _decode(rt, obj)
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{secrets.token_hex(3)}"
        name = metadata.get("name")
        if not name:
            raise invalid(
                rt.kind,
                rt.group,
                "",
                ["metadata.name: Required value: name or generateName is required"],
            )
        if metadata.get("namespace", namespace) != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the object does not match the namespace of the request",
            )
        obj["apiVersion"] = obj.get("apiVersion") or rt.api_version(version)
        obj["kind"] = obj.get("kind") or rt.kind
        if (obj["apiVersion"], obj["kind"]) != (rt.api_version(version), rt.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj['apiVersion']}) and kind ({obj['kind']}) do "
                f"not match the endpoint ({rt.api_version(version)}, {rt.kind})",
            )
        if rt.has_status:
            obj.pop("status", None)
        if rt.default_replicas is not None and isinstance(obj.get("spec"), dict):
            obj["spec"].setdefault("replicas", rt.default_replicas)
        with self._changed:
            key = self._key(rt, namespace, name)
            if key in self._objects:
                resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource} "{name}" already exists',
                    name=name,
                    kind=rt.plural,
                    group=rt.group,
                )
            metadata.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
            metadata.pop("resourceVersion", None)
            metadata.pop("generateName", None)
            if rt.tracks_generation:
                metadata["generation"] = 1
            self._check(rt, obj)
            self._version += 1
            metadata["resourceVersion"] = str(self._version)
            self._objects[key] = obj
            self._record("ADDED", rt, namespace, obj)
            return copy.deepcopy(obj)

    def write(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace the object by ``change(stored copy)``, with the API server's rules.

        An update (PUT) is a change that ignores the stored copy, a patch one that edits it; the
        resourceVersion the result names is the precondition either way.
        """
        with self._changed:
            key = self._key(rt, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise self._missing(rt, name)
            wanted = change(copy.deepcopy(current))
            if not isinstance(wanted, dict) or not isinstance(wanted.get("metadata", {}), dict):
                raise ApiError(400, "BadRequest", "the object must be a JSON object with metadata")
            _decode(rt, wanted)
            metadata = wanted.get("metadata", {})
            if metadata.get("name", name) != name:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the object's name ({metadata['name']}) is not the name on the URL ({name})",
                )
            stated = metadata.get("resourceVersion")
            if stated in (None, "") and not rt.unconditional_update:
                problem = "metadata.resourceVersion: Invalid value: 0x0: must be specified"
                raise invalid(rt.kind, rt.group, name, [f"{problem} for an update"])
            if stated not in (None, "") and stated != current["metadata"]["resourceVersion"]:
                resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    name=name,
                    kind=rt.plural,
                    group=rt.group,
                )
            result = self._merge(rt, current, wanted, subresource)
            if result == current:
                return copy.deepcopy(current)
            self._check(rt, result)
            self._version += 1
            result["metadata"]["resourceVersion"] = str(self._version)
            self._objects[key] = result
            self._record("MODIFIED", rt, namespace, result)
            return copy.deepcopy(result)

    @staticmethod
    def _merge(
        rt: ResourceType,
        current: dict[str, Any],
        wanted: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        if subresource == "status":
            result = copy.deepcopy(current)
            if "status" in wanted:
                result["status"] = copy.deepcopy(wanted["status"])
            else:
                result.pop("status", None)
            return result
        result = copy.deepcopy(wanted)
        result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
        metadata = result.setdefault("metadata", {})
        for field in _SERVER_FIELDS:
            if field in current["metadata"]:
                metadata[field] = current["metadata"][field]
        if rt.has_status:
            result.pop("status", None)
            if "status" in current:
                result["status"] = copy.deepcopy(current["status"])
        if rt.tracks_generation and _body_of(result) != _body_of(current):
            metadata["generation"] = current["metadata"]["generation"] + 1
        return result

    def delete(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._changed:
            obj = self._objects.pop(self._key(rt, namespace, name), None)
            if obj is None:
                raise self._missing(rt, name)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._record("DELETED", rt, namespace, obj)
            return copy.deepcopy(obj)

    def events_after(
        self,
        rt: ResourceType,
        namespace: str,
        since: int,
        matches: Matcher,
        wait_s: float,
    ) -> list[WatchEvent]:
        """The matching changes after resourceVersion ``since``, waiting up to ``wait_s`` for one.

        Raises 410 Gone when ``since`` is older than the history kept.
        """
        with self._changed:
            if since < self._compacted:
                raise ApiError(
                    410, "Expired", f"too old resource version: {since} ({self._compacted})"
                )

            def pending() -> list[WatchEvent]:
                return [
                    e
                    for e in self._history
                    if e.resource_version > since
                    and (e.group, e.plural, e.namespace) == (rt.group, rt.plural, namespace)
                    and matches(e.object)
                ]

            found = pending()
            if not found and not self.closed:
                self._changed.wait(wait_s)
                found = pending()
            return found

    def compact(self) -> None:
        """Forget the history: watches from any resourceVersion up to now get 410 Gone."""
        with self._changed:
            self._history.clear()
            self._compacted = self._version

    def close(self) -> None:
        """Wake every waiting watch so that the server can stop."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def set_deployment_status(
        self, rt: ResourceType, namespace: str, name: str, ready: int | None
    ) -> dict[str, Any]:
        """What the deployment controller and kubelets report once ``ready`` pods (all of
        ``spec.replicas`` when None) are ready and the current generation is rolled out."""

        def report(obj: dict[str, Any]) -> dict[str, Any]:
            replicas = obj.get("spec", {}).get("replicas", 1)
            count = replicas if ready is None else min(ready, replicas)
            obj["status"] = {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": count,
                "availableReplicas": count,
                "unavailableReplicas": replicas - count,
            }
            obj["status"] = {k: v for k, v in obj["status"].items() if v}
            obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
            return obj

        return self.write(rt, namespace, name, report, subresource="status")
