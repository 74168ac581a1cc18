"""The router of the single-machine mode: the persisted route table, applied to HAProxy.

This is how the controller and ``mlcanary router routes | set-weights`` read and change the
routes. The admin is not an HTTP API on the data port: it is the table file (under a lock) and
HAProxy's runtime API on a unix socket, both in the router's private directory, so only the
user who runs the platform can change the weights, and nothing on the network can.

Every call reconciles: the table on disk is read and HAProxy's live servers are brought to it,
before a read returns and after a write is persisted. A write that was persisted but not applied
(HAProxy down, or restarting) is therefore applied by the next call, and a call that returns
has left HAProxy holding the table it returns.

``ensure_running`` is called before each call. The platform passes one that starts HAProxy when
it is not running (it may have been killed), so the controller's next tick restarts it with the
persisted weights; the CLI passes none and reports a router that is down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlcanary.local.router.runtime import RuntimeApi
from mlcanary.local.router.state import RouterFiles, StateFileError, check_forwardable
from mlcanary.rollout.routers.base import RouterUnavailableError, RouteTable, StaleRoutesError

__all__ = ["LocalRouter"]


class LocalRouter:
    def __init__(
        self,
        directory: Path,
        *,
        ensure_running: Callable[[], None] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.files = RouterFiles(directory)
        self._runtime = RuntimeApi(self.files.admin_socket, timeout_s)
        self._ensure_running = ensure_running

    def routes(self) -> RouteTable:
        """The persisted table, in force in HAProxy when this returns."""
        self._start()
        with self.files.locked():
            table = self._persisted()
            self._runtime.converge(table)
            return table

    def set_routes(self, table: RouteTable, if_generation: int | None = None) -> RouteTable:
        """Persist ``table``'s routes, then apply them; the table in force is returned.

        RouteTableError when HAProxy could not use a route (nothing is persisted then),
        StaleRoutesError when ``if_generation`` is given and the table has moved on from it,
        RouterUnavailableError when HAProxy cannot be reached: the table is then persisted and
        applied by the next call, or when HAProxy starts again.
        """
        check_forwardable(table)
        self._start()
        with self.files.locked():
            current = self._persisted()
            if if_generation is not None and if_generation != current.generation:
                raise StaleRoutesError(if_generation, current.generation)
            applied = current.replaced_by(table)
            if applied is not current:
                self.files.save(applied)
            self._runtime.converge(applied)
            return applied

    def _start(self) -> None:
        if self._ensure_running is not None:
            self._ensure_running()

    def _persisted(self) -> RouteTable:
        try:
            table = self.files.load()
        except StateFileError as exc:
            raise RouterUnavailableError(str(exc)) from exc
        if table is None:
            raise RouterUnavailableError(
                f"no route table in {self.files.directory}: the router was never started there"
            )
        return table
