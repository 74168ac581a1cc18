"""The routers mlcanary knows, by the name a spec gives in ``spec.router.type``.

Each router is one module that owns everything about it, as Flagger keeps one file per mesh
behind one factory: its spec rules, the objects it renders, the RBAC rules it needs, and how it
sets and reads weights. This registry only names them, says on which platform each runs and
where its module lives. A module is imported when a rollout uses it, so naming the routers (to
validate a spec, to generate the CRD's schema) pulls in no I/O library.

Adding a router: one module defining ``ROUTER`` (a `RouterKind`; for the cluster, the richer
`mlcanary.k8s.routers.kind.ClusterRouterKind`), and one line in `ROUTERS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mlcanary.rollout.spec import RolloutSpec

__all__ = ["ROUTERS", "Platform", "RouterEntry", "RouterKind", "router_kind"]

Platform = Literal["local", "cluster"]


@dataclass(frozen=True)
class RouterEntry:
    platform: Platform
    module: str  # defines ROUTER


ROUTERS: dict[str, RouterEntry] = {
    "local": RouterEntry("local", "mlcanary.local.router.kind"),
    "gateway-api": RouterEntry("cluster", "mlcanary.k8s.routers.gateway_api"),
    "istio": RouterEntry("cluster", "mlcanary.k8s.routers.istio"),
    "replicas": RouterEntry("cluster", "mlcanary.k8s.routers.replicas"),
}


class RouterKind(Protocol):
    """What every router module's ``ROUTER`` offers, whatever its platform."""

    @property
    def name(self) -> str: ...

    def spec_problems(self, spec: RolloutSpec) -> list[tuple[str, str]]:
        """This router's own rules on a spec, as ``(field path, problem)``."""
        ...


def router_kind(name: str) -> RouterKind:
    """The ``ROUTER`` of the named router's module; KeyError for a name not in `ROUTERS`."""
    kind: RouterKind = importlib.import_module(ROUTERS[name].module).ROUTER
    return kind
