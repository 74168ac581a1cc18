"""The router port: how the controller moves traffic between a model's versions.

One interface (`base.Router`, in the spirit of Flagger's ``pkg/router/router.go``), its test
double (`memory`), and the registry that names every router and where its module lives
(`registry`): the local router of the single-machine platform (`mlcanary.local.router`), and
the cluster's Gateway API, Istio and replica-ratio routers (`mlcanary.k8s.routers`). Only the
interface is exported here, so that importing it pulls in no I/O library.
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
