"""What the in-cluster controller may do: its permissions, and the RBAC objects granting them.

Why constants: `CONTROLLER_PERMISSIONS` (what every rollout needs) and each router module's own
``permissions`` (`mlcanary.k8s.routers.kind.ClusterRouterKind`) are the single source of truth for
the Role that is rendered and for the test that compares it with the requests the controller
really makes, so the two cannot drift apart. It is kept minimal: a namespaced Role (never a
ClusterRole), named resources and verbs only (no wildcard), and nothing on Secrets: the serving
pods read the feedback key from their Secret through the kubelet, the controller never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlcanary.k8s import crd, naming
from mlcanary.k8s.leader import LEASE_GROUP, LEASE_PLURAL
from mlcanary.k8s.routers.kind import Permission, cluster_router

__all__ = [
    "CONTROLLER_PERMISSIONS",
    "SHADOW_PERMISSIONS",
    "Permission",
    "permissions_for",
    "role",
    "role_binding",
    "service_account",
]


CONTROLLER_PERMISSIONS: tuple[Permission, ...] = (
    # Watch rollouts, and write their status through the status subresource only.
    Permission(crd.GROUP, crd.PLURAL, ("get", "list", "watch")),
    # Status is replaced whole, naming the resourceVersion read, so a lost race is a 409.
    Permission(crd.GROUP, f"{crd.PLURAL}/status", ("update",)),
    # Wait for a version's Deployment to be ready (read one by name); scale it (the replicas
    # router carries the traffic ratio in replica counts, and a retired version goes to zero).
    Permission("apps", "deployments", ("get", "patch")),
    # Explain decisions on the rollout object (`kubectl describe mro`).
    Permission("", "events", ("create",)),
    # Elect one acting replica (`mlcanary.k8s.leader`): read the Lease, create it when missing,
    # renew, take over or hand back by replacing it. Never delete, list or watch.
    Permission(LEASE_GROUP, LEASE_PLURAL, ("get", "create", "update")),
)


# Tell the stable servers what to copy during a shadow step (`mlcanary.k8s.mirror`): read the
# model's mirror ConfigMap, which the manifests create, and patch its data. Granted only where a
# rendered spec has a shadow step.
SHADOW_PERMISSIONS: tuple[Permission, ...] = (Permission("", "configmaps", ("get", "patch")),)


def permissions_for(router: str, *, shadow: bool = False) -> list[Permission]:
    """What the controller needs for rollouts routed by ``router`` (a cluster router's name),
    with ``shadow`` steps or without."""
    extra = SHADOW_PERMISSIONS if shadow else ()
    return [*CONTROLLER_PERMISSIONS, *cluster_router(router).permissions, *extra]


def _rules(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    return [
        {"apiGroups": [p.api_group], "resources": [p.resource], "verbs": list(p.verbs)}
        for p in permissions
    ]


def _metadata(namespace: str) -> dict[str, Any]:
    return {
        "name": naming.CONTROLLER,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": naming.CONTROLLER,
            "app.kubernetes.io/part-of": naming.PART_OF,
        },
    }


def service_account(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(namespace)}


def role(namespace: str, router: str, *, shadow: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(namespace),
        "rules": _rules(permissions_for(router, shadow=shadow)),
    }


def role_binding(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": naming.CONTROLLER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": naming.CONTROLLER, "namespace": namespace}],
    }
