"""The ``gateway-api`` router: weights on the backendRefs of a Gateway API v1 HTTPRoute.

The vendor-neutral way to split traffic: any conformant implementation (Envoy Gateway, Istio,
Cilium, NGINX Gateway Fabric...) honours backendRef weights. A backend without a weight counts
as 1, as the Gateway API specifies; a weight of 0 keeps a version routed but sent nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client import CustomObjectsApi

from mlcanary.k8s import naming
from mlcanary.k8s.routers.route_object import RouteKind, RouteObjectRouter

__all__ = ["HTTPROUTE", "GatewayApiRouter"]


def _service(ref: dict[str, Any]) -> str | None:
    if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
        return None
    name = ref.get("name")
    return name if isinstance(name, str) else None


def _make_ref(service: str, weight: int, template: dict[str, Any] | None) -> dict[str, Any]:
    ref = dict(template or {"port": naming.SERVING_PORT})
    ref.update(name=service, weight=weight)
    return ref


HTTPROUTE = RouteKind(
    group="gateway.networking.k8s.io",
    version="v1",
    plural="httproutes",
    kind="HTTPRoute",
    rules_field="rules",
    refs_field="backendRefs",
    service=_service,
    make_ref=_make_ref,
    default_weight=1,
)


class GatewayApiRouter(RouteObjectRouter):
    def __init__(
        self, api: CustomObjectsApi, namespace: str, model: str, versions: Sequence[str]
    ) -> None:
        super().__init__(api, HTTPROUTE, namespace, model, versions)
