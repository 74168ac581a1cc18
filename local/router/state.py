"""The proxy's route table: in memory for each request, on disk for the next process.

Why a table is never changed in place: the active routes (table and picker) are one object,
replaced by reference when the table changes. A request reads that reference once and uses what
it got until it answers, so a weight change never fails a request in flight, and a request
never sees half of a change.

Why the file is written before the new table takes effect: the admin API answers 200 only once
the table is on disk (temporary file, fsync, rename, fsync of the directory), so a controller
told "applied" can rely on a proxy that crashes and restarts keeping those weights.

One proxy per state file: two proxies sharing one would each serve their own table.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from mlcanary.local.file_store import atomic_write
from mlcanary.rollout.routers.base import (
    TOTAL_WEIGHT,
    Route,
    RouteTable,
    RouteTableError,
    StaleRoutesError,
)

__all__ = [
    "ActiveRoutes",
    "RouteState",
    "SmoothWeightedPicker",
    "StateFileError",
    "check_forwardable",
    "load_table",
    "save_table",
]

logger = logging.getLogger("mlcanary.router")


class StateFileError(RuntimeError):
    """The state file cannot be read as a route table, or there is no table to start from.

    Never silently replaced by the command line's routes: after a rollback those could send
    traffic to a version that was taken out.
    """


class SmoothWeightedPicker:
    """nginx's smooth weighted round-robin over the routes with a positive weight.

    Why not random choice: the split is exact, not merely expected. Over any run of 100 picks from
    a fresh picker each route is chosen exactly ``weight`` times, and for two routes the count
    after any number of picks is within one of its share. A canary at 10% therefore gets every
    tenth request, spread out in time, instead of bursts, and the analysis sees the traffic the
    weights promise from the first requests. Not thread-safe: the proxy's event loop is its only
    caller.
    """

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._routes = tuple(route for route in routes if route.weight > 0)
        self._current = [0] * len(self._routes)

    def pick(self) -> Route:
        best = 0
        for index, route in enumerate(self._routes):
            self._current[index] += route.weight
            if self._current[index] > self._current[best]:
                best = index
        self._current[best] -= TOTAL_WEIGHT
        return self._routes[best]


class ActiveRoutes:
    """A table with its own picker; a new table starts a new picker, so every generation's split
    is exact on its own."""

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._picker = SmoothWeightedPicker(table.routes)

    def pick(self) -> Route:
        return self._picker.pick()

    def heaviest(self) -> Route:
        """Where feedback goes when its version has no route: any replica of the model counts it
        for the version in the token, and the heaviest route is the one sure to be serving."""
        return max(self.table.routes, key=lambda route: route.weight)


def check_forwardable(table: RouteTable) -> None:
    """The proxy forwards over HTTP, so each route's address must be an http(s) base URL."""
    for index, route in enumerate(table.routes):
        try:
            parts = urlsplit(route.url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not (
            port_ok
            and parts.scheme in {"http", "https"}
            and parts.hostname
            and not parts.query
            and not parts.fragment
        ):
            raise RouteTableError(
                f"routes[{index}].url",
                f"must be an http(s) base URL such as http://127.0.0.1:3000, not {route.url!r}",
            )


def load_table(path: Path) -> RouteTable | None:
    """The table saved at ``path``, or None when there is no file yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        table = RouteTable.from_json(orjson.loads(data))
        check_forwardable(table)
    except ValueError as exc:
        raise StateFileError(f"state file {path} does not hold a route table: {exc}") from None
    return table


def save_table(path: Path, table: RouteTable) -> None:
    atomic_write(path, orjson.dumps(table.to_json(), option=orjson.OPT_INDENT_2))


class RouteState:
    """The active routes and the only way to change them."""

    def __init__(self, path: Path, table: RouteTable) -> None:
        self.path = path
        self.active = ActiveRoutes(table)
        self._lock = asyncio.Lock()

    @classmethod
    def open(cls, path: Path, initial: RouteTable | None) -> RouteState:
        """From the state file if there is one, so a restarted proxy keeps its weights; else from
        ``initial`` (the command line's routes), saved at once so that a state path that cannot
        be written fails now rather than at the first weight change."""
        table = load_table(path)
        if table is not None:
            if initial is not None and initial.routes != table.routes:
                logger.warning("keeping the routes of %s; the initial routes are ignored", path)
            return cls(path, table)
        if initial is None:
            raise StateFileError(f"no state file at {path} and no initial routes to start from")
        check_forwardable(initial)
        table = RouteTable(initial.routes, generation=1)
        save_table(path, table)
        return cls(path, table)

    async def replace(self, desired: RouteTable, if_generation: int | None = None) -> RouteTable:
        """Apply ``desired``: saved first, then swapped in; on any error nothing changes.

        With ``if_generation``, only while the active table still has that generation
        (StaleRoutesError otherwise), checked under the same lock as the swap.
        """
        check_forwardable(desired)
        async with self._lock:
            current = self.active.table
            if if_generation is not None and if_generation != current.generation:
                raise StaleRoutesError(if_generation, current.generation)
            table = current.replaced_by(desired)
            if table is not current:
                await asyncio.to_thread(save_table, self.path, table)
                self.active = ActiveRoutes(table)
                logger.info(
                    "routes generation %d: %s",
                    table.generation,
                    ", ".join(f"{r.version}={r.weight}" for r in table.routes),
                )
            return table
