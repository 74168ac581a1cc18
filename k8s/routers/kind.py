"""What a cluster router module offers beyond the core's `RouterKind`.

Each cluster router (`gateway_api`, `istio`, `replicas`) is one module defining ``ROUTER``, an
instance of `ClusterRouterKind` holding all that is particular to it: the objects `mlcanary k8s
render` writes for it, the RBAC rules the controller needs to move its weights, whether it owns
the Deployments' replica counts, and how the controller's `Router` adapter is built. The
renderer, the Role and the controller ask the router's module rather than branching on its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes.client import AppsV1Api, CustomObjectsApi

from mlcanary.k8s import naming
from mlcanary.rollout.routers.base import Router
from mlcanary.rollout.routers.registry import ROUTERS, router_kind

if TYPE_CHECKING:
    from mlcanary.k8s.render.options import RenderOptions
    from mlcanary.rollout.spec import RolloutSpec

__all__ = ["ApiContext", "ClusterRouterKind", "Permission", "RouteContext", "cluster_router"]


@dataclass(frozen=True)
class Permission:
    """One RBAC rule the controller needs (`mlcanary.k8s.rbac` renders them into its Role)."""

    api_group: str  # "" is the core group
    resource: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class RouteContext:
    """What rendering a router's objects needs: the model's versions, where, and the options."""

    model: str
    stable: str
    canary: str
    namespace: str
    options: RenderOptions

    def metadata(self) -> dict[str, Any]:
        """The metadata of the model's routing object (named after the model, not a version)."""
        from mlcanary.k8s.render.workloads import labels

        return {
            "name": naming.route(self.model),
            "namespace": self.namespace,
            "labels": labels(self.model),
        }


@dataclass(frozen=True)
class ApiContext:
    """What building the controller's adapter needs: API clients, where, and the rollout."""

    custom: CustomObjectsApi
    apps: AppsV1Api
    namespace: str
    spec: RolloutSpec

    @property
    def versions(self) -> Sequence[str]:
        return (self.spec.stable.version, self.spec.canary.version)


@dataclass(frozen=True)
class ClusterRouterKind:
    name: str
    render: Callable[[RouteContext], list[dict[str, Any]]]
    build: Callable[[ApiContext], Router]
    # The controller's rights on this router's objects, beside those every router needs.
    permissions: tuple[Permission, ...] = ()
    # A router that carries the split in the Deployments' replica counts owns them: this gives
    # the total (all of it on stable at first, none on the canary). The renderer sets those
    # counts and gives the Deployments no autoscaler; the controller scales them.
    replica_total: Callable[[RolloutSpec], int] | None = None

    def spec_problems(self, spec: RolloutSpec) -> list[tuple[str, str]]:
        return []


def cluster_router(name: str) -> ClusterRouterKind:
    """The module of a cluster router; ValueError for a name that is not one."""
    entry = ROUTERS.get(name)
    if entry is None or entry.platform != "cluster":
        raise ValueError(f"{name!r} is not a cluster router")
    kind = router_kind(name)
    if not isinstance(kind, ClusterRouterKind):
        raise TypeError(f"{entry.module}.ROUTER is not a ClusterRouterKind")
    return kind
