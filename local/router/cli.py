"""``mlcanary router``: run the local router (HAProxy), and read or change its weights.

``serve`` renders HAProxy's configuration from the persisted table (or, the first time, from
``--route``) and then becomes HAProxy (exec), so the process that the platform records and
signals is HAProxy itself. ``routes`` and ``set-weights`` go through the same adapter as the
controller: the table file under its lock, and HAProxy's runtime API.

Every command takes the local platform's ``--state-dir``; the router's files are in its
``router/`` directory.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlcanary.console import console, fail
from mlcanary.local.cli import StateDir, _state_dir
from mlcanary.local.file_store import atomic_write
from mlcanary.local.router.admin import LocalRouter
from mlcanary.local.router.haproxy import (
    MISSING_HAPROXY,
    RouterSettings,
    haproxy_binary,
    render_config,
)
from mlcanary.local.router.state import RouterFiles, StateFileError, check_forwardable
from mlcanary.rollout.routers.base import (
    Route,
    RouterUnavailableError,
    RouteTable,
    RouteTableError,
    StaleRoutesError,
)

__all__ = ["parse_listen", "parse_route", "router_app"]

router_app = typer.Typer(
    no_args_is_help=True,
    help="The local router (HAProxy) that splits traffic between model versions.",
)


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, with IPv6 hosts in brackets (``[::1]:8080``)."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, not {listen!r}")
    return host, int(port)


def parse_route(text: str) -> Route:
    """``VERSION=URL=WEIGHT``; the URL may itself contain ``=``."""
    version, _, rest = text.partition("=")
    url, _, weight = rest.rpartition("=")
    if not url or not weight.isdigit():
        raise ValueError(f"expected VERSION=URL=WEIGHT, not {text!r}")
    return Route(version, url, int(weight))


def _router(state_dir: Path | None) -> LocalRouter:
    return LocalRouter(RouterFiles.of_platform(_state_dir(state_dir)).directory)


def _starting_table(files: RouterFiles, initial: RouteTable | None) -> RouteTable:
    """The persisted table if there is one, so a restarted router keeps its weights; else the
    command line's, persisted at once (generation 1)."""
    table = files.load()
    if table is not None:
        if initial is not None and initial.routes != table.routes:
            console.print(f"keeping the routes of {files.table}; --route is ignored")
        return table
    if initial is None:
        raise StateFileError(f"no state file at {files.table} and no --route to start from")
    table = RouteTable(initial.routes, generation=1)
    files.save(table)
    return table


@router_app.command()
def serve(
    *,
    state_dir: StateDir = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT of /predict and /feedback.")] = (
        "127.0.0.1:8080"
    ),
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route",
            help="VERSION=URL=WEIGHT, repeatable: the first table, when the state file does not "
            "exist yet (it wins when it does).",
        ),
    ] = None,
    upstream_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds a version has to answer before a 504.")
    ] = 10.0,
) -> None:
    """Run HAProxy on LISTEN with the persisted weights; /-/readyz and /-/metrics beside."""
    binary = haproxy_binary()
    if binary is None:
        fail(MISSING_HAPROXY)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from None
    try:
        initial = RouteTable(tuple(parse_route(r) for r in route)) if route else None
        if initial is not None:
            check_forwardable(initial)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--route") from None
    files = RouterFiles.of_platform(_state_dir(state_dir))
    try:
        files.prepare()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--state-dir") from None
    settings = RouterSettings(host, port, upstream_timeout_s=upstream_timeout)
    try:
        with files.locked():
            table = _starting_table(files, initial)
            config = render_config(table, settings, str(files.admin_socket.absolute()))
            atomic_write(files.config, config.encode())
    except (StateFileError, RouteTableError, OSError) as exc:
        fail(str(exc))
    console.print(
        f"router on {listen}, generation {table.generation}: "
        + ", ".join(f"{r.version}={r.weight}" for r in table.routes)
    )
    sys.stdout.flush()  # exec replaces the process, buffers and all
    os.execv(binary, [binary, "-db", "-f", str(files.config)])  # noqa: S606


def _print_table(table: RouteTable) -> None:
    view = Table("version", "weight", "url", title=f"routes, generation {table.generation}")
    for r in table.routes:
        view.add_row(r.version, f"{r.weight}%", r.url)
    console.print(view)


@router_app.command("routes")
def show_routes(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the route table (and bring the running router back to it, if it strayed)."""
    try:
        table = _router(state_dir).routes()
    except RouterUnavailableError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(table.to_json(), indent=2))
        return
    _print_table(table)


@router_app.command("set-weights")
def set_weights(
    weights: Annotated[
        list[str], typer.Argument(help="VERSION=WEIGHT for each version; versions not named get 0.")
    ],
    state_dir: StateDir = None,
) -> None:
    """Change the weights of routed versions, for example: set-weights v1=90 v2=10."""
    router = _router(state_dir)
    wanted: dict[str, int] = {}
    for pair in weights:
        version, sep, weight = pair.partition("=")
        if not sep or not weight.isdigit():
            raise typer.BadParameter(f"expected VERSION=WEIGHT, not {pair!r}", param_hint="WEIGHTS")
        wanted[version] = int(weight)
    try:
        current = router.routes()
        unknown = sorted(wanted.keys() - current.weights.keys())
        if unknown:
            raise typer.BadParameter(
                f"{', '.join(unknown)} not routed; the routed versions are "
                f"{', '.join(current.weights)}",
                param_hint="WEIGHTS",
            )
        desired = RouteTable(
            tuple(replace(r, weight=wanted.get(r.version, 0)) for r in current.routes)
        )
        _print_table(router.set_routes(desired, if_generation=current.generation))
    except (RouterUnavailableError, RouteTableError, StaleRoutesError) as exc:
        fail(str(exc))


if __name__ == "__main__":
    router_app()
