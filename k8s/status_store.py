"""The rollout status kept in the ModelRollout's status subresource, and commands as annotations.

Why the status subresource: the status then lives with the object (``kubectl get mro``), survives
any controller restart or replacement, and is written apart from the spec, so the controller
never overwrites what a person just changed. The object's ``resourceVersion`` is the revision:
`save` replaces the status naming the resourceVersion it loaded, and the API server answers 409
Conflict if anything changed the object since; that is raised as ConflictError and the
controller reloads and decides again, so no write is lost. The resourceVersion is carried as
the opaque string it is, compared for equality only, as the API conventions ask of clients.)
``observedGeneration`` is written next to the status: the spec generation it was decided on.

Commands (promote, abort, pause, resume) are the annotation ``mlcanary.dev/command`` on the
object, the value ``COMMAND`` or ``COMMAND:ID`` (`request` adds a fresh ID; with kubectl:
``kubectl annotate mro NAME mlcanary.dev/command=promote:$(date +%s) --overwrite``). The
controller never writes the object itself: the engine records the request it carried out
(``lastCommand``) in the status of the decision that carried it out, so a command is applied
exactly once even if the controller dies in between, and a value still on the object from an
earlier rollout is not applied again to the next one. A word that is no command is handed over
all the same: the engine records it as seen and ignores it, with its reason.

This store only persists: conditions, like the rest of the status, are decided by the core.

With several controller replicas, ``may_write`` fences the writes: a replica that no longer
leads (a renewal missed, or a process paused past its lease) is refused its status write as a
conflict, before the write leaves, so its tick ends there and moves no traffic.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from mlcanary.k8s import crd
from mlcanary.k8s.api_objects import CONFLICT, MERGE_PATCH, NOT_FOUND, custom_object
from mlcanary.rollout.commands import Command, CommandRequest
from mlcanary.rollout.spec import API_VERSION, KIND
from mlcanary.rollout.status import RolloutStatus
from mlcanary.rollout.store.base import ConflictError, StoredStatus

__all__ = ["COMMAND_ANNOTATION", "ModelRolloutStatusStore"]

COMMAND_ANNOTATION = "mlcanary.dev/command"


@dataclass(frozen=True)
class _Loaded:
    generation: int
    command: str | None  # the annotation's value
    last_command: str | None  # the value the status says was carried out


def _always() -> bool:
    return True


class ModelRolloutStatusStore:
    def __init__(
        self, api: CustomObjectsApi, namespace: str, may_write: Callable[[], bool] = _always
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._may_write = may_write
        self._loaded: dict[str, _Loaded] = {}

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            obj = self._api.get_namespaced_custom_object(
                crd.GROUP, crd.VERSION, self._namespace, crd.PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return custom_object(obj, f"a read of ModelRollout {name}")

    def load(self, name: str) -> StoredStatus | None:
        obj = self._get(name)
        if obj is None:
            return None
        metadata = obj["metadata"]
        document = dict(obj.get("status") or {})
        document.pop("observedGeneration", None)
        status = RolloutStatus.model_validate(document)
        self._loaded[name] = _Loaded(
            generation=int(metadata.get("generation", 0)),
            command=(metadata.get("annotations") or {}).get(COMMAND_ANNOTATION),
            last_command=status.last_command,
        )
        return StoredStatus(status, str(metadata["resourceVersion"]))

    def save(self, name: str, status: RolloutStatus, revision: str | None) -> StoredStatus:
        loaded = self._loaded.get(name)
        if revision is None or loaded is None:
            raise ConflictError(f"ModelRollout {name} was not loaded before this save")
        if not self._may_write():
            raise ConflictError(f"ModelRollout {name}: this replica no longer leads")
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": self._namespace,
                "resourceVersion": revision,
            },
            "status": {
                **status.model_dump(mode="json"),
                "observedGeneration": loaded.generation,
            },
        }
        try:
            written = self._api.replace_namespaced_custom_object_status(
                crd.GROUP, crd.VERSION, self._namespace, crd.PLURAL, name, body
            )
        except ApiException as exc:
            if exc.status in (CONFLICT, NOT_FOUND):
                gone = "was deleted" if exc.status == NOT_FOUND else "changed"
                raise ConflictError(
                    f"ModelRollout {name} {gone} since resourceVersion {revision}"
                ) from exc
            raise
        obj = custom_object(written, f"the status write of ModelRollout {name}")
        return StoredStatus(status, str(obj["metadata"]["resourceVersion"]))

    def request(self, name: str, command: Command) -> None:
        """Annotate the object: what ``mlcanary`` does for a person (who needs ``patch`` on
        modelrollouts; the controller does not)."""
        value = f"{command.value}:{secrets.token_hex(4)}"
        patch = {"metadata": {"annotations": {COMMAND_ANNOTATION: value}}}
        self._api.patch_namespaced_custom_object(
            crd.GROUP, crd.VERSION, self._namespace, crd.PLURAL, name, patch,
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    def take_command(self, name: str) -> CommandRequest | None:
        """The request on the object as last loaded, unless the status says it was carried out."""
        loaded = self._loaded.get(name)
        if loaded is None or loaded.command is None or loaded.command == loaded.last_command:
            return None
        return CommandRequest.parse(loaded.command)
