"""The router's directory: the persisted route table, HAProxy's configuration, the admin socket.

Why the table on disk is the truth and HAProxy follows it: the table is written (temporary file,
fsync, rename, fsync of the directory) before HAProxy is told, and HAProxy's configuration is
rendered from it at every start. A router killed at any instant therefore comes back with the
weights last persisted, and a change that was persisted but not applied is applied at the next
reconciliation (`admin.LocalRouter` reconciles at every read).

Why a file lock: the controller and a person's ``mlcanary router set-weights`` may both change
the routes; each reads the table, checks its generation, writes and applies it while holding the
lock, so a generation check and the write that follows it cannot interleave with another.

Why the directory is private (mode 0700): it holds the admin socket, and whoever can connect to
it can move all traffic. The socket itself is also created with mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from mlcanary.local.file_store import atomic_write
from mlcanary.local.router.haproxy import server_address
from mlcanary.rollout.routers.base import RouteTable, RouteTableError

__all__ = ["RouterFiles", "StateFileError", "check_forwardable"]

# sun_path holds 108 bytes; HAProxy binds "<path>.<pid>.tmp" first and renames it.
_SOCKET_PATH_LIMIT = 107 - len(".4194304.tmp")


class StateFileError(RuntimeError):
    """The state file cannot be read as a route table, or there is no table to start from.

    Never silently replaced by the command line's routes: after a rollback those could send
    traffic to a version that was taken out.
    """


def check_forwardable(table: RouteTable) -> None:
    """HAProxy connects to each route's ``http://IP:PORT``; RouteTableError naming the route."""
    for index, route in enumerate(table.routes):
        try:
            server_address(route)
        except RouteTableError as exc:
            raise exc.within(f"routes[{index}]") from None


@dataclass(frozen=True)
class RouterFiles:
    """The files of one router, all in one directory."""

    directory: Path

    @classmethod
    def of_platform(cls, state_dir: Path) -> RouterFiles:
        """The router's files in the local platform's state directory."""
        return cls(state_dir / "router")

    @property
    def table(self) -> Path:
        return self.directory / "routes.json"

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def admin_socket(self) -> Path:
        return self.directory / "admin.sock"

    def prepare(self) -> None:
        """Create the private directory; ValueError when the socket's path would be too long."""
        socket_path = str(self.admin_socket.absolute())
        if len(socket_path.encode()) > _SOCKET_PATH_LIMIT:
            raise ValueError(
                f"the router's admin socket {socket_path} is longer than a unix socket path may "
                f"be ({_SOCKET_PATH_LIMIT} bytes): choose a shorter state directory"
            )
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the table while the block runs, across processes."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (self.directory / "routes.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> RouteTable | None:
        """The persisted table, or None when there is none yet."""
        try:
            data = self.table.read_bytes()
        except FileNotFoundError:
            return None
        try:
            table = RouteTable.from_json(orjson.loads(data))
            check_forwardable(table)
        except ValueError as exc:
            raise StateFileError(
                f"state file {self.table} does not hold a route table: {exc}"
            ) from None
        return table

    def save(self, table: RouteTable) -> None:
        atomic_write(self.table, orjson.dumps(table.to_json(), option=orjson.OPT_INDENT_2))
