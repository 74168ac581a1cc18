"""A router that only remembers: the test double for the controller."""

from __future__ import annotations

from mlcanary.rollout.routers.base import RouterUnavailableError, RouteTable

__all__ = ["MemoryRouter"]


class MemoryRouter:
    """Holds the table in memory and records every table it was given, in order, so that a
    controller test can assert the sequence of weights; ``available = False`` stands for a router
    that cannot be reached."""

    def __init__(self, initial: RouteTable) -> None:
        self._table = initial
        self.history: list[RouteTable] = []
        self.available = True

    def _reach(self) -> None:
        if not self.available:
            raise RouterUnavailableError("the in-memory router is set unavailable")

    def routes(self) -> RouteTable:
        self._reach()
        return self._table

    def set_routes(self, table: RouteTable) -> RouteTable:
        self._reach()
        self.history.append(table)
        self._table = self._table.replaced_by(table)
        return self._table
