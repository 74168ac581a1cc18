"""The ``replicas`` router: no mesh, one Service over both versions' pods, traffic by replica count.

A Service balances over ready pods evenly, so a version's share of the traffic is its share of the
replicas. The router splits ``total`` replicas (``spec.router.replicas``, 10 by default) among the
table's versions by weight with the largest-remainder method; a version given any traffic keeps at
least one replica, one at weight 0 gets none. Not every share is reachable: with 3 replicas, 10%
becomes 1 canary replica of 3, 33%. `routes()` reports the share the replica counts really carry,
so the status shows the decided weight and the router the achieved one; choose a total that
carries the steps (10 for multiples of 10%, 20 for 5%).

A version that is not in the table is left as it is: the version that lost a rollout leaves the
table first and is scaled to 0 when it is retired, after the drain delay, like under the other
routers. A canary at 0 replicas gets its first one from the 10% step; readiness needs no gate
here, since the Service sends nothing to a pod that is not ready (`mlcanary.k8s.workloads`).

Scaling is one write per Deployment: the version that grows is scaled first, so serving capacity
never dips below the total in between. A replica count is last-writer-wins (no resourceVersion):
the router owns it in this mode, which is why the rendered manifests put no autoscaler on these
Deployments. The share is computed from ``spec.replicas``, not from ready pods: pods that are
still starting take no traffic yet, which only delays the shift.

Rendered: only the model's Service, selecting the pods of both versions. The Deployments get
their replica counts (stable the whole total, canary none) and no autoscaler: this router owns
the counts. It needs no rights beyond those every router has (reading and scaling Deployments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kubernetes.client import AppsV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s import naming
from mlcanary.k8s.api_objects import MERGE_PATCH, NOT_FOUND
from mlcanary.k8s.render.workloads import service
from mlcanary.k8s.routers.kind import ApiContext, ClusterRouterKind, RouteContext
from mlcanary.k8s.routers.shares import apportion
from mlcanary.rollout.routers.base import (
    TOTAL_WEIGHT,
    Route,
    RouterUnavailableError,
    RouteTable,
    RouteTableError,
)

if TYPE_CHECKING:
    from mlcanary.rollout.spec import RolloutSpec

__all__ = ["DEFAULT_TOTAL_REPLICAS", "ROUTER", "ReplicasRouter"]

DEFAULT_TOTAL_REPLICAS = 10


class ReplicasRouter:
    def __init__(
        self,
        api: AppsV1Api,
        namespace: str,
        model: str,
        versions: Sequence[str],
        total: int = DEFAULT_TOTAL_REPLICAS,
    ) -> None:
        if total < 1:
            raise ValueError(f"total replicas must be at least 1, not {total}")
        self._api = api
        self._namespace = namespace
        self._versions = {naming.workload(model, v): v for v in versions}
        self.total = total

    def _call(self, what: str, name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise RouterUnavailableError(
                    f"Deployment {self._namespace}/{name} does not exist: apply the manifests "
                    "that `mlcanary k8s render` writes for this model"
                ) from exc
            raise RouterUnavailableError(
                f"cannot {what} Deployment {self._namespace}/{name}: {exc.status} {exc.reason}"
            ) from exc
        except HTTPError as exc:
            raise RouterUnavailableError(f"cannot reach the API server: {exc}") from exc

    def _replicas(self) -> dict[str, int]:
        counts = {}
        for name in self._versions:
            deployment = self._call(
                "read", name, self._api.read_namespaced_deployment, name, self._namespace
            )
            counts[name] = (deployment.spec.replicas if deployment.spec else None) or 0
        return counts

    def _table(self, counts: dict[str, int]) -> RouteTable:
        serving = {name: n for name, n in counts.items() if n > 0}
        if not serving:
            raise RouterUnavailableError(
                f"no replicas for any of {', '.join(sorted(self._versions))}: nothing is served"
            )
        shares = apportion(TOTAL_WEIGHT, list(serving.values()))
        return RouteTable(
            tuple(
                Route(self._versions[name], name, share)
                for name, share in zip(serving, shares, strict=True)
            )
        )

    def routes(self) -> RouteTable:
        return self._table(self._replicas())

    def replicas_for(self, table: RouteTable) -> dict[str, int]:
        """The replica count of each Deployment in the table."""
        unknown = [r.url for r in table.routes if r.url not in self._versions]
        if unknown:
            raise RouteTableError(
                "routes", f"{', '.join(unknown)} is not a Deployment of a version of this rollout"
            )
        counts = apportion(self.total, [r.weight for r in table.routes], keep_positive=True)
        return {route.url: count for route, count in zip(table.routes, counts, strict=True)}

    def set_routes(self, table: RouteTable) -> RouteTable:
        current = self._replicas()
        wanted = {**current, **self.replicas_for(table)}
        growing_first = sorted(wanted, key=lambda name: wanted[name] <= current[name])
        for name in growing_first:
            if wanted[name] != current[name]:
                self._call(
                    "scale", name, self._api.patch_namespaced_deployment,
                    name, self._namespace, {"spec": {"replicas": wanted[name]}},
                    _content_type=MERGE_PATCH,
                )  # fmt: skip
        return self._table(wanted)


def _model_service(ctx: RouteContext) -> list[dict[str, Any]]:
    return [service(ctx.model, None, namespace=ctx.namespace)]


def _total(spec: RolloutSpec) -> int:
    return spec.router.replicas or DEFAULT_TOTAL_REPLICAS


def _build(ctx: ApiContext) -> ReplicasRouter:
    return ReplicasRouter(ctx.apps, ctx.namespace, ctx.spec.model, ctx.versions, _total(ctx.spec))


ROUTER = ClusterRouterKind(
    name="replicas", render=_model_service, build=_build, replica_total=_total
)
