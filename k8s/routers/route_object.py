"""Routers that set the weights of a routing object: the part Gateway API and Istio share.

Every change is one write of the object's whole rule list, carrying the resourceVersion it was
computed from, so a concurrent edit (a person's ``kubectl edit``, GitOps) is a 409 Conflict
instead of being overwritten: the router then reads the object again and recomputes, a few
times, before reporting the router unavailable for this tick.

The rules the router manages are those whose backends are all Services of this rollout's model
versions (`mlcanary.k8s.naming.workload`); other rules of the object (another path, a redirect)
are left alone. A rollout's versions are known, so a backend is mapped back to its version by
name; a managed rule pointing at a Service of no known version is reported rather than guessed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s import naming
from mlcanary.k8s.api_objects import CONFLICT, INVALID, MERGE_PATCH, NOT_FOUND, custom_object
from mlcanary.k8s.routers.shares import apportion
from mlcanary.rollout.routers.base import (
    TOTAL_WEIGHT,
    Route,
    RouterUnavailableError,
    RouteTable,
    RouteTableError,
)

__all__ = ["RouteKind", "RouteObjectRouter"]


@dataclass(frozen=True)
class RouteKind:
    """Where a kind of routing object keeps its weighted backends."""

    group: str
    version: str
    plural: str
    kind: str
    rules_field: str  # spec.<rules_field>: the list of rules
    refs_field: str  # rule.<refs_field>: the list of weighted backends
    service: Callable[[dict[str, Any]], str | None]  # a backend's Service name
    make_ref: Callable[[str, int, dict[str, Any] | None], dict[str, Any]]
    default_weight: int  # what a backend without a weight counts as


class RouteObjectRouter:
    def __init__(
        self,
        api: CustomObjectsApi,
        kind: RouteKind,
        namespace: str,
        model: str,
        versions: Sequence[str],
        *,
        attempts: int = 5,
    ) -> None:
        self._api = api
        self._kind = kind
        self._namespace = namespace
        self.name = naming.route(model)
        self._versions = {naming.workload(model, v): v for v in versions}
        self._attempts = attempts

    @property
    def _where(self) -> str:
        return f"{self._kind.kind} {self._namespace}/{self.name}"

    def _read(self) -> dict[str, Any]:
        k = self._kind
        try:
            obj = self._api.get_namespaced_custom_object(
                k.group, k.version, self._namespace, k.plural, self.name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise RouterUnavailableError(
                    f"{self._where} does not exist: apply the manifests that "
                    "`mlcanary k8s render` writes for this model"
                ) from exc
            raise RouterUnavailableError(
                f"cannot read {self._where}: {exc.status} {exc.reason}"
            ) from exc
        except HTTPError as exc:
            raise RouterUnavailableError(f"cannot reach the API server: {exc}") from exc
        return custom_object(obj, f"a read of {self._where}")

    def _managed(self, obj: dict[str, Any]) -> list[int]:
        rules = obj.get("spec", {}).get(self._kind.rules_field) or []
        managed = [
            index
            for index, rule in enumerate(rules)
            if (refs := rule.get(self._kind.refs_field))
            and all(self._kind.service(ref) in self._versions for ref in refs)
        ]
        if not managed:
            known = ", ".join(sorted(self._versions))
            raise RouterUnavailableError(
                f"{self._where} has no rule whose backends are all among {known}"
            )
        return managed

    def _table(self, obj: dict[str, Any]) -> RouteTable:
        rule = obj["spec"][self._kind.rules_field][self._managed(obj)[0]]
        refs = rule[self._kind.refs_field]
        raw = [ref.get("weight", self._kind.default_weight) for ref in refs]
        if not any(raw):
            raise RouterUnavailableError(f"{self._where} gives every backend weight 0")
        shares = raw if sum(raw) == TOTAL_WEIGHT else apportion(TOTAL_WEIGHT, raw)
        routes = []
        for ref, share in zip(refs, shares, strict=True):
            service = self._kind.service(ref)
            assert service is not None  # a managed rule's backends are all known
            routes.append(Route(self._versions[service], service, share))
        return RouteTable(tuple(routes), obj["metadata"].get("generation", 0))

    def routes(self) -> RouteTable:
        return self._table(self._read())

    def _rewritten(self, obj: dict[str, Any], table: RouteTable) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = copy.deepcopy(obj["spec"][self._kind.rules_field])
        for index in self._managed(obj):
            old = {self._kind.service(ref): ref for ref in rules[index][self._kind.refs_field]}
            template = next(iter(old.values()))
            rules[index][self._kind.refs_field] = [
                self._kind.make_ref(route.url, route.weight, old.get(route.url, template))
                for route in table.routes
            ]
        return rules

    def set_routes(self, table: RouteTable) -> RouteTable:
        unknown = [r.url for r in table.routes if r.url not in self._versions]
        if unknown:
            raise RouteTableError(
                "routes", f"{', '.join(unknown)} is not the Service of a version of this rollout"
            )
        k = self._kind
        for _ in range(self._attempts):
            obj = self._read()
            if self._table(obj).routes == table.routes:
                return self._table(obj)
            patch = {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": {k.rules_field: self._rewritten(obj, table)},
            }
            try:
                written = self._api.patch_namespaced_custom_object(
                    k.group, k.version, self._namespace, k.plural, self.name, patch,
                    _content_type=MERGE_PATCH,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == CONFLICT:
                    continue
                if exc.status == INVALID:
                    raise RouteTableError("routes", f"{self._where} refused: {exc.body}") from exc
                raise RouterUnavailableError(
                    f"cannot write {self._where}: {exc.status} {exc.reason}"
                ) from exc
            except HTTPError as exc:
                raise RouterUnavailableError(f"cannot reach the API server: {exc}") from exc
            return self._table(custom_object(written, f"a write of {self._where}"))
        raise RouterUnavailableError(
            f"{self._where} changed under every one of {self._attempts} writes; retrying next tick"
        )
