"""The local weighted proxy: the router of the single-machine mode, as its own process.

It runs apart from the controller so that traffic keeps its weights while the controller is
stopped or restarted, and it keeps its table in a state file so that it survives its own restart
too. `app` is the HTTP app (forwarding and the admin API), `state` the route table and how it
changes, `cli` the ``mlcanary router`` commands. The controller talks to it only through
`mlcanary.rollout.routers.local.LocalRouter`.
"""

from mlcanary.rollout.proxy.app import Proxy, ProxyMetrics, build_app
from mlcanary.rollout.proxy.state import RouteState, StateFileError

__all__ = ["Proxy", "ProxyMetrics", "RouteState", "StateFileError", "build_app"]
