"""The routing object that carries the traffic split, one function per router type.

The controller moves weights by patching these objects in place; the initial split is stable
100, canary 0. Each router's layout is what its controller-side counterpart expects:

* ``gateway-api``: an HTTPRoute named ``naming.route(model)`` attached to a Gateway, with one
  rule whose ``backendRefs`` are the two version Services, stable first, each with its weight.
* ``istio``: a VirtualService named ``naming.route(model)`` for the host ``naming.route(model)``
  (the model's Service), with one HTTP route whose two destinations are the version Services'
  hosts, stable first, each with its weight. No DestinationRule: one host per version needs no
  subsets.
* ``replicas``: no routing object: the model's Service selects the pods of both versions and the
  replica counts carry the ratio (``spec.router.replicas`` in all), so its granularity is
  1/replicas: 10 pods carry 10% steps exactly.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import naming
from mlcanary.k8s.render.options import RenderOptions
from mlcanary.k8s.render.workloads import labels, service

__all__ = ["routing_objects"]


def _http_route(
    model: str, stable: str, canary: str, namespace: str, options: RenderOptions
) -> dict[str, Any]:
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": options.gateway}
    if options.gateway_namespace is not None:
        parent["namespace"] = options.gateway_namespace
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": naming.route(model), "namespace": namespace, "labels": labels(model)},
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": naming.workload(model, version),
                            "port": naming.SERVING_PORT,
                            "weight": weight,
                        }
                        for version, weight in ((stable, 100), (canary, 0))
                    ],
                }
            ],
        },
    }


def _virtual_service(model: str, stable: str, canary: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": naming.route(model), "namespace": namespace, "labels": labels(model)},
        "spec": {
            "hosts": [naming.route(model)],
            "http": [
                {
                    "name": "rollout",
                    "route": [
                        {
                            "destination": {
                                "host": naming.workload(model, version),
                                "port": {"number": naming.SERVING_PORT},
                            },
                            "weight": weight,
                        }
                        for version, weight in ((stable, 100), (canary, 0))
                    ],
                }
            ],
        },
    }


def routing_objects(
    router: str, model: str, *, stable: str, canary: str, namespace: str, options: RenderOptions
) -> list[dict[str, Any]]:
    """The routing object(s) of ``router``; the model's Service for the routers whose clients
    call it (the Gateway API's clients call the Gateway)."""
    if router == "gateway-api":
        return [_http_route(model, stable, canary, namespace, options)]
    if router == "istio":
        return [
            service(model, None, namespace=namespace),
            _virtual_service(model, stable, canary, namespace),
        ]
    if router == "replicas":
        return [service(model, None, namespace=namespace)]
    raise ValueError(f"spec.router.type: {router!r} has no Kubernetes routing object")
