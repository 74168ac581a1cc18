"""The ``istio`` router: destination weights in the HTTP routes of an Istio VirtualService.

Destinations name a Service by host, short (``digits-v2``) or fully qualified
(``digits-v2.ns.svc.cluster.local``); both are read, and the router writes the short form, which
Istio resolves in the VirtualService's namespace. A destination without a weight is the whole
route when it is alone (Istio's rule), so it counts as 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client import CustomObjectsApi

from mlcanary.k8s import naming
from mlcanary.k8s.render.workloads import service
from mlcanary.k8s.routers.kind import ApiContext, ClusterRouterKind, Permission, RouteContext
from mlcanary.k8s.routers.route_object import RouteKind, RouteObjectRouter

__all__ = ["ROUTER", "VIRTUALSERVICE", "IstioRouter"]


def _service(ref: dict[str, Any]) -> str | None:
    destination = ref.get("destination") or {}
    host = destination.get("host")
    return host.split(".")[0] if isinstance(host, str) else None


def _make_ref(service: str, weight: int, template: dict[str, Any] | None) -> dict[str, Any]:
    destination = dict((template or {}).get("destination") or {})
    destination.setdefault("port", {"number": naming.SERVING_PORT})
    destination["host"] = service
    destination.pop("subset", None)  # versions are told apart by Service, not by subset
    return {**(template or {}), "destination": destination, "weight": weight}


VIRTUALSERVICE = RouteKind(
    group="networking.istio.io",
    version="v1",
    plural="virtualservices",
    kind="VirtualService",
    rules_field="http",
    refs_field="route",
    service=_service,
    make_ref=_make_ref,
    default_weight=100,
)


class IstioRouter(RouteObjectRouter):
    def __init__(
        self, api: CustomObjectsApi, namespace: str, model: str, versions: Sequence[str]
    ) -> None:
        super().__init__(api, VIRTUALSERVICE, namespace, model, versions)


def _virtual_service(ctx: RouteContext) -> list[dict[str, Any]]:
    virtual_service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": ctx.metadata(),
        "spec": {
            "hosts": [naming.route(ctx.model)],
            "http": [
                {
                    "name": "rollout",
                    "route": [
                        {
                            "destination": {
                                "host": naming.workload(ctx.model, version),
                                "port": {"number": naming.SERVING_PORT},
                            },
                            "weight": weight,
                        }
                        for version, weight in ((ctx.stable, 100), (ctx.canary, 0))
                    ],
                }
            ],
        },
    }
    return [service(ctx.model, None, namespace=ctx.namespace), virtual_service]


def _build(ctx: ApiContext) -> IstioRouter:
    return IstioRouter(ctx.custom, ctx.namespace, ctx.spec.model, ctx.versions)


ROUTER = ClusterRouterKind(
    name="istio",
    render=_virtual_service,
    build=_build,
    # Shift weights on the VirtualService that `mlcanary k8s render` created.
    permissions=(Permission("networking.istio.io", "virtualservices", ("get", "patch")),),
)
