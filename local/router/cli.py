"""``mlcanary router``: run the local weighted proxy, and read or change its weights.

``serve`` runs uvicorn in this process with one worker, because the route table lives in the
process's memory: two workers would each hold their own. ``routes`` and ``set-weights`` go
through the same admin API adapter as the controller.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlcanary.console import console, fail
from mlcanary.local.router.admin import DEFAULT_ADMIN_URL, LocalRouter
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
    help="The local weighted proxy that splits traffic between model versions.",
)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


AdminOption = Annotated[str, typer.Option("--admin", help="The proxy's base URL.")]


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, with IPv6 hosts in brackets (``[::1]:8080``)."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, not {listen!r}")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_route(text: str) -> Route:
    """``VERSION=URL=WEIGHT``; the URL may itself contain ``=``."""
    version, _, rest = text.partition("=")
    url, _, weight = rest.rpartition("=")
    if not url or not weight.isdigit():
        raise ValueError(f"expected VERSION=URL=WEIGHT, not {text!r}")
    return Route(version, url, int(weight))


@router_app.command()
def serve(
    *,
    state: Annotated[
        Path,
        typer.Option(
            help="Route table file: read at start if it exists, rewritten at every change."
        ),
    ],
    listen: Annotated[
        str, typer.Option(help="HOST:PORT; loopback only unless --allow-remote-admin.")
    ] = "127.0.0.1:8080",
    route: Annotated[
        list[str] | None,
        typer.Option(
            "--route",
            help="VERSION=URL=WEIGHT, repeatable: the first table, when the state file does not "
            "exist yet (it wins when it does).",
        ),
    ] = None,
    allow_remote_admin: Annotated[
        bool,
        typer.Option(help="Listen beyond loopback although the admin API has no authentication."),
    ] = False,
    upstream_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds a backend has to answer before a 504.")
    ] = 10.0,
    log_level: Annotated[LogLevel, typer.Option(help="Least severe messages logged.")] = (
        LogLevel.INFO
    ),
) -> None:
    """Serve /predict and /feedback on loopback, split by weight, with the admin API in /-/."""
    import uvicorn

    from mlcanary.local.router.app import Proxy, build_app
    from mlcanary.local.router.state import RouteState, StateFileError

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from None
    if not _is_loopback(host) and not allow_remote_admin:
        raise typer.BadParameter(
            f"{host} is not a loopback address and the admin API has no authentication; "
            "pass --allow-remote-admin to listen there anyway",
            param_hint="--listen",
        )
    try:
        initial = RouteTable(tuple(parse_route(r) for r in route)) if route else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--route") from None
    logging.basicConfig(
        level=log_level.value.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        route_state = RouteState.open(state, initial)
    except (StateFileError, RouteTableError, OSError) as exc:
        fail(str(exc))
    if not _is_loopback(host):
        logging.getLogger("mlcanary.router").warning(
            "the admin API on %s:%d is open to anyone who can reach it", host, port
        )
    proxy = Proxy(route_state, upstream_timeout_s=upstream_timeout)
    uvicorn.run(
        build_app(proxy),
        host=host,
        port=port,
        workers=1,
        log_level=log_level.value,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def _print_table(table: RouteTable) -> None:
    view = Table("version", "weight", "url", title=f"routes, generation {table.generation}")
    for r in table.routes:
        view.add_row(r.version, f"{r.weight}%", r.url)
    console.print(view)


@router_app.command("routes")
def show_routes(
    admin: AdminOption = DEFAULT_ADMIN_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the proxy's route table."""
    try:
        table = LocalRouter(admin).routes()
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
    admin: AdminOption = DEFAULT_ADMIN_URL,
) -> None:
    """Change the weights of routed versions, for example: set-weights v1=90 v2=10."""
    router = LocalRouter(admin)
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
