"""HAProxy's runtime API: the live servers of each backend, brought to a route table.

Each command goes over its own connection to the admin socket (the API's non-interactive mode:
one command, one answer, then the socket closes), so an answer is never confused with the next.

Why the commands come in this order: HAProxy applies them one at a time, and a request may be
balanced between two of them. New servers are added and weights raised before any weight is
lowered, and servers are taken out last, so no request ever finds every weight at zero (going
from 100/0 to 0/100 passes through 100/100, never 0/0).

Why every weighted server is then taken out of the round-robin and put back, one at a time:
HAProxy's weighted round-robin keeps a position per server, and a server that went down and came
back (a restarted service) can be left with a position far from the others', after which the
other version gets hundreds of requests in a row before the split settles. A server put back
is placed afresh in the current round, so placing each again puts them all in step and the new
split holds from the first requests. While one is out the others take its share, for the
instant between two commands; a server alone in the table is never taken out.

Why a server given a new address, or taken back into the table, is declared up at once rather
than left to its next health check: the platform puts a service in the table only once it
answered its readiness check, so the version gets its share from the first request.

Why the live state is read back after every change instead of trusting the answers: each
command answers in its own words ("New server registered.", an empty line, "No such server.").
What counts is what HAProxy then holds, and `show servers state` says it in one format.

A server leaving the table is put in maintenance (it gets no new request at once) and then
deleted; HAProxy refuses to delete a server that still has a request in flight, so one that
cannot be deleted yet stays in maintenance, which is as good as gone, and deletion is tried
again at the next reconciliation.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from mlcanary.local.router.haproxy import BACKENDS, server_address, server_options
from mlcanary.rollout.routers.base import RouterUnavailableError, RouteTable

__all__ = ["LiveServer", "RuntimeApi", "commands_for", "parse_servers_state"]

# srv_admin_state bits that keep a server from taking requests: forced, inherited, configured,
# resolution and hostname maintenance; and forced or inherited drain.
_NOT_READY = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x80
_MAINTENANCE = 0x01 | 0x02 | 0x04 | 0x20 | 0x80


@dataclass(frozen=True)
class LiveServer:
    """One server as HAProxy holds it now."""

    name: str
    host: str
    port: int
    weight: int
    admin_state: int

    @property
    def ready(self) -> bool:
        return not self.admin_state & _NOT_READY

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin_state & _MAINTENANCE)


def parse_servers_state(text: str) -> dict[str, LiveServer]:
    """The servers of ``show servers state BACKEND`` (format 1), by name.

    The first line is the format version, the second names the columns; the columns are read
    by name so that a newer HAProxy adding some does not shift them.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0].strip() != "1" or not lines[1].startswith("# "):
        raise ValueError(f"not a servers state answer: {text[:200]!r}")
    columns = lines[1][2:].split()
    servers = {}
    for line in lines[2:]:
        row = dict(zip(columns, line.split(), strict=False))
        servers[row["srv_name"]] = LiveServer(
            row["srv_name"],
            row["srv_addr"],
            int(row["srv_port"]),
            int(row["srv_uweight"]),
            int(row["srv_admin_state"]),
        )
    return servers


def _matches(server: LiveServer | None, table: RouteTable, name: str) -> bool:
    route = table.route(name)
    if route is None:
        return server is None or server.in_maintenance
    return (
        server is not None
        and server.ready
        and (server.host, server.port, server.weight) == (*server_address(route), route.weight)
    )


def commands_for(backend: str, live: dict[str, LiveServer], table: RouteTable) -> list[str]:
    """The runtime commands that bring ``backend``'s servers from ``live`` to ``table``."""
    raising: list[str] = []
    lowering: list[str] = []
    for route in table.routes:
        server = live.get(route.version)
        target = f"{backend}/{route.version}"
        if server is None:
            raising += [
                f"add server {target} {server_options(route)}",
                f"enable health {target}",
                f"enable server {target}",
            ]
            continue
        changes = []
        host, port = server_address(route)
        moved = (server.host, server.port) != (host, port)
        if moved:
            changes.append(f"set server {target} addr {host} port {port}")
        if server.weight != route.weight:
            changes.append(f"set server {target} weight {route.weight}")
        if not server.ready:
            changes.append(f"set server {target} state ready")
        if moved or not server.ready:
            changes.append(f"set server {target} health up")
        (lowering if route.weight < server.weight else raising).extend(changes)
    leaving = []
    for name, server in live.items():
        if table.route(name) is None:
            if not server.in_maintenance:
                leaving.append(f"set server {backend}/{name} state maint")
            leaving.append(f"del server {backend}/{name}")
    changes = raising + lowering + leaving
    return changes + _reseat(backend, table) if changes else []


def _reseat(backend: str, table: RouteTable) -> list[str]:
    """Take each weighted server out of the round-robin and back, one at a time."""
    weighted = [route for route in table.routes if route.weight > 0]
    if len(weighted) < 2:
        return []
    return [
        command
        for route in weighted
        for command in (
            f"set server {backend}/{route.version} weight 0",
            f"set server {backend}/{route.version} weight {route.weight}",
        )
    ]


class RuntimeApi:
    def __init__(self, admin_socket: Path, timeout_s: float = 5.0) -> None:
        self.admin_socket = admin_socket
        self._timeout_s = timeout_s

    def execute(self, command: str) -> str:
        """HAProxy's answer to one command; RouterUnavailableError when it cannot be asked."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(self._timeout_s)
                connection.connect(str(self.admin_socket))
                connection.sendall(f"{command}\n".encode())
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise RouterUnavailableError(
                f"the router is not running (nothing answers on {self.admin_socket}: {exc})"
            ) from exc
        except TimeoutError as exc:
            raise RouterUnavailableError(
                f"the router did not answer on {self.admin_socket} within {self._timeout_s:g}s"
            ) from exc
        except OSError as exc:
            raise RouterUnavailableError(
                f"cannot reach the router on {self.admin_socket}: {exc}"
            ) from exc
        return b"".join(chunks).decode(errors="replace")

    def servers(self, backend: str) -> dict[str, LiveServer]:
        answer = self.execute(f"show servers state {backend}")
        try:
            return parse_servers_state(answer)
        except (ValueError, KeyError) as exc:
            raise RouterUnavailableError(
                f"the router's answer to show servers state {backend} is not understood: {exc}"
            ) from exc

    def converge(self, table: RouteTable) -> None:
        """Bring every backend to ``table``; RouterUnavailableError if HAProxy does not get there,
        with the answers of the commands that did not take."""
        for backend in BACKENDS.values():
            live = self.servers(backend)
            answers = [
                (command, self.execute(command)) for command in commands_for(backend, live, table)
            ]
            now = self.servers(backend)
            names = {route.version for route in table.routes} | now.keys()
            if not all(_matches(now.get(name), table, name) for name in names):
                said = "; ".join(f"{c!r}: {a.strip()!r}" for c, a in answers if a.strip())
                raise RouterUnavailableError(
                    f"the router's {backend} backend did not take the routes: {said or 'no answer'}"
                )
