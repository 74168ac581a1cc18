"""The router interface: how the controller moves traffic between model versions.

Like Flagger's ``pkg/router/router.go``, the controller sees one small interface and each traffic
manager is one module behind it: the local proxy here, and later Gateway API (an ``HTTPRoute``'s
``backendRefs`` weights), Istio (a ``VirtualService``'s destination weights) and plain replica
ratios. A table names every version and its whole share, rather than a (primary, canary) pair,
so that a router can also hold a version at weight 0 (it still receives its feedback) and a
table is applied whole: no reader ever sees half of a change.

Weights are integers that add up to 100 because Gateway API and Istio weights are integers, and
a percentage is what the rollout spec's steps are written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mlcanary.names import NAME

__all__ = [
    "TOTAL_WEIGHT",
    "Route",
    "RouteTable",
    "RouteTableError",
    "Router",
    "RouterUnavailableError",
    "StaleRoutesError",
]

TOTAL_WEIGHT = 100
_ROUTE_FIELDS = frozenset({"version", "url", "weight"})
_TABLE_FIELDS = frozenset({"routes", "generation"})


class RouteTableError(ValueError):
    """A table no router may apply. ``field`` is the path of the offending part, for example
    ``routes[1].weight``, so that an API answer or a CLI message can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, prefix: str) -> RouteTableError:
        """The same error, located inside an enclosing document."""
        return RouteTableError(f"{prefix}.{self.field}", self.message)


class RouterUnavailableError(RuntimeError):
    """The router could not be reached or gave no usable answer.

    After a failed ``set_routes`` the table may or may not have been applied (the answer may be
    what was lost). Calling it again with the same table is safe, so the controller reports the
    error and retries at its next tick instead of failing the rollout.
    """


class StaleRoutesError(RuntimeError):
    """The router's table changed since the caller read it; nothing was applied.

    A person's read-modify-write (``mlcanary router set-weights``) names the generation it read,
    so that a table written meanwhile by the controller is not overwritten by weights computed
    from an older one. The controller itself needs no such check: it applies the weights its own
    persisted status dictates at every tick.
    """

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"the routes changed since they were read (generation {expected} is now {actual}); "
            "nothing was applied: read them again"
        )
        self.expected = expected
        self.actual = actual


def _check_route(version: object, url: object, weight: object) -> None:
    if not isinstance(version, str) or not NAME.fullmatch(version):
        raise RouteTableError(
            "version",
            f"must be a model version name ([a-z0-9][a-z0-9_.-]*, at most 63 characters), "
            f"not {version!r}",
        )
    if not isinstance(url, str) or not url or url != url.strip():
        raise RouteTableError("url", f"must be a non-empty address without spaces, not {url!r}")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= TOTAL_WEIGHT:
        raise RouteTableError("weight", f"must be an integer in 0..{TOTAL_WEIGHT}, not {weight!r}")


@dataclass(frozen=True)
class Route:
    """One version's share of the traffic.

    ``url`` is the backend as the router addresses it: a base URL such as
    ``http://127.0.0.1:3001`` for the local proxy, a Kubernetes Service name such as
    ``digits-v2`` for the Gateway API, Istio and replica routers. Each router checks the form it
    needs; here it only has to be present.
    """

    version: str
    url: str
    weight: int

    def __post_init__(self) -> None:
        _check_route(self.version, self.url, self.weight)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "url": self.url, "weight": self.weight}


@dataclass(frozen=True)
class RouteTable:
    """Every routed version with its weight, and the router's generation of that table.

    ``generation`` belongs to the router, like ``metadata.generation`` in Kubernetes: it counts
    the changes the router applied, and whatever a caller puts there is replaced when the table
    is applied (0 stands for a table no router has applied yet). It tells which table served a
    request and whether anyone changed the routes since they were read.
    """

    routes: tuple[Route, ...]
    generation: int = 0

    def __post_init__(self) -> None:
        if not self.routes:
            raise RouteTableError("routes", "must name at least one route")
        first_index: dict[str, int] = {}
        for index, route in enumerate(self.routes):
            if route.version in first_index:
                raise RouteTableError(
                    f"routes[{index}].version",
                    f"{route.version} is already routed by routes[{first_index[route.version]}]",
                )
            first_index[route.version] = index
        total = sum(route.weight for route in self.routes)
        if total != TOTAL_WEIGHT:
            shares = ", ".join(f"{r.version}={r.weight}" for r in self.routes)
            raise RouteTableError(
                "routes", f"the weights must add up to {TOTAL_WEIGHT}, not {total} ({shares})"
            )
        generation: object = self.generation
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise RouteTableError("generation", f"must be an integer >= 0, not {generation!r}")

    def route(self, version: str) -> Route | None:
        return next((r for r in self.routes if r.version == version), None)

    @property
    def weights(self) -> dict[str, int]:
        return {route.version: route.weight for route in self.routes}

    def replaced_by(self, desired: RouteTable) -> RouteTable:
        """What a router holding this table holds once asked to apply ``desired``.

        The generation moves only when the routes change, so a controller that applies the same
        weights at every tick changes nothing and writes nothing.
        """
        if desired.routes == self.routes:
            return self
        return RouteTable(desired.routes, self.generation + 1)

    def to_json(self) -> dict[str, Any]:
        return {"generation": self.generation, "routes": [r.to_json() for r in self.routes]}

    @classmethod
    def from_json(cls, document: object) -> RouteTable:
        """Parse untrusted JSON; every error names the field, e.g. ``routes[0].weight``."""
        if not isinstance(document, dict):
            raise RouteTableError("$", "must be an object with routes and generation")
        _reject_unknown(document, _TABLE_FIELDS, "")
        routes = document.get("routes")
        if not isinstance(routes, list):
            raise RouteTableError("routes", f"must be a list of routes, not {routes!r}")
        parsed = []
        for index, item in enumerate(routes):
            where = f"routes[{index}]"
            if not isinstance(item, dict):
                raise RouteTableError(where, "must be an object with version, url and weight")
            _reject_unknown(item, _ROUTE_FIELDS, f"{where}.")
            missing = sorted(_ROUTE_FIELDS - item.keys())
            if missing:
                raise RouteTableError(f"{where}.{missing[0]}", "is required")
            try:
                parsed.append(Route(**item))
            except RouteTableError as exc:
                raise exc.within(where) from None
        return cls(tuple(parsed), document.get("generation", 0))


def _reject_unknown(document: dict[str, Any], known: frozenset[str], prefix: str) -> None:
    unknown = sorted(str(key) for key in document.keys() - known)
    if unknown:
        raise RouteTableError(
            f"{prefix}{unknown[0]}", f"is not a known field (expected {', '.join(sorted(known))})"
        )


class Router(Protocol):
    """Moves traffic between the versions of one model.

    Implementations raise RouterUnavailableError when the traffic manager cannot be reached (the
    local proxy is down, the Kubernetes API times out), and RouteTableError when it refuses the
    table (a URL the local proxy cannot forward to, a Service the mesh does not know).
    """

    def routes(self) -> RouteTable:
        """The table in force, with the router's generation."""
        ...

    def set_routes(self, table: RouteTable) -> RouteTable:
        """Apply ``table``'s routes whole or not at all; the table in force is returned."""
        ...
