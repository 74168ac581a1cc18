"""The ``gateway-api`` router: weights on the backendRefs of a Gateway API v1 HTTPRoute.

The vendor-neutral way to split traffic: any conformant implementation (Envoy Gateway, Istio,
Cilium, NGINX Gateway Fabric...) honours backendRef weights. A backend without a weight counts
as 1, as the Gateway API specifies; a weight of 0 keeps a version routed but sent nothing.

Rendered: an HTTPRoute named ``naming.route(model)`` attached to a Gateway, with one rule whose
``backendRefs`` are the two version Services, stable first, stable at 100 and canary at 0. Its
clients call the Gateway, so the model needs no Service of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client import CustomObjectsApi

from mlcanary.k8s import naming
from mlcanary.k8s.routers.kind import ApiContext, ClusterRouterKind, Permission, RouteContext
from mlcanary.k8s.routers.route_object import RouteKind, RouteObjectRouter

__all__ = ["HTTPROUTE", "ROUTER", "GatewayApiRouter"]


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


def _http_route(ctx: RouteContext) -> list[dict[str, Any]]:
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ctx.options.gateway}
    if ctx.options.gateway_namespace is not None:
        parent["namespace"] = ctx.options.gateway_namespace
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": ctx.metadata(),
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": naming.workload(ctx.model, version),
                            "port": naming.SERVING_PORT,
                            "weight": weight,
                        }
                        for version, weight in ((ctx.stable, 100), (ctx.canary, 0))
                    ],
                }
            ],
        },
    }
    return [route]


def _build(ctx: ApiContext) -> GatewayApiRouter:
    return GatewayApiRouter(ctx.custom, ctx.namespace, ctx.spec.model, ctx.versions)


ROUTER = ClusterRouterKind(
    name="gateway-api",
    render=_http_route,
    build=_build,
    # Shift weights on the HTTPRoute that `mlcanary k8s render` created.
    permissions=(Permission("gateway.networking.k8s.io", "httproutes", ("get", "patch")),),
)
