"""Routers: how the controller moves traffic between a model's stable and canary versions.

One interface (`base.Router`, in the spirit of Flagger's ``pkg/router/router.go``), one module per
implementation: `local` (the weighted proxy of the single-machine mode, through its admin API)
and `memory` (the test double). The Kubernetes routers (Gateway API ``HTTPRoute``, Istio
``VirtualService``, replica ratio) implement the same interface. Only the interface is exported
here, so that importing it pulls in no I/O library.
"""

from mlcanary.rollout.routers.base import (
    TOTAL_WEIGHT,
    Route,
    Router,
    RouterUnavailableError,
    RouteTable,
    RouteTableError,
)

__all__ = [
    "TOTAL_WEIGHT",
    "Route",
    "RouteTable",
    "RouteTableError",
    "Router",
    "RouterUnavailableError",
]
