"""The controller's adapter (`LocalRouter`) against a real HAProxy, and against none at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlcanary.local.router.admin import LocalRouter
from mlcanary.local.router.runtime import RuntimeApi
from mlcanary.rollout.routers import Route, RouterUnavailableError, RouteTable, RouteTableError
from mlcanary.rollout.routers.base import StaleRoutesError
from tests.local.router.conftest import RunningRouter, as_routes, running_router, split_table

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("haproxy_installed")]


def _live_weights(router: RunningRouter, backend: str = "predict") -> dict[str, int]:
    servers = RuntimeApi(router.admin.files.admin_socket).servers(backend)
    return {name: server.weight for name, server in servers.items() if server.ready}


def test_reads_and_replaces_the_table(router: RunningRouter, backends: dict[str, str]) -> None:
    start = router.admin.routes()
    assert start.routes == split_table(backends, 100, 0).routes
    canary = split_table(backends, 90, 10)
    applied = router.admin.set_routes(canary)
    assert applied == RouteTable(canary.routes, start.generation + 1)
    assert router.admin.set_routes(canary) == applied  # same routes: nothing to apply
    assert router.admin.routes() == applied
    assert router.admin.files.load() == applied
    assert _live_weights(router) == _live_weights(router, "feedback") == {"v1": 90, "v2": 10}


def test_a_write_over_a_generation_that_moved_on_is_refused(
    router: RunningRouter, backends: dict[str, str]
) -> None:
    read = router.admin.routes()
    meanwhile = router.admin.set_routes(split_table(backends, 90, 10))
    with pytest.raises(StaleRoutesError) as caught:
        router.admin.set_routes(split_table(backends, 50, 50), if_generation=read.generation)
    assert (caught.value.expected, caught.value.actual) == (read.generation, meanwhile.generation)
    assert router.admin.routes() == meanwhile
    assert _live_weights(router) == {"v1": 90, "v2": 10}
    fresh = router.admin.set_routes(
        split_table(backends, 50, 50), if_generation=meanwhile.generation
    )
    assert fresh.weights == {"v1": 50, "v2": 50}


def test_a_table_haproxy_cannot_use_is_refused_naming_the_field(router: RunningRouter) -> None:
    before = router.admin.routes()
    with pytest.raises(RouteTableError) as caught:
        router.admin.set_routes(RouteTable((Route("v1", "digits-v1", 100),)))
    assert caught.value.field == "routes[0].url"
    assert router.admin.files.load() == before


def test_versions_join_and_leave_the_table(router: RunningRouter, backends: dict[str, str]) -> None:
    only_v2 = RouteTable((Route("v2", backends["v2"], 100),))
    router.admin.set_routes(only_v2)
    assert _live_weights(router) == _live_weights(router, "feedback") == {"v2": 100}
    router.admin.set_routes(split_table(backends, 30, 70))
    assert _live_weights(router) == {"v1": 30, "v2": 70}


def test_a_router_that_strayed_is_brought_back_at_the_next_read(
    router: RunningRouter, backends: dict[str, str]
) -> None:
    """As after a crash between persisting a table and applying it."""
    applied = router.admin.set_routes(split_table(backends, 90, 10))
    runtime = RuntimeApi(router.admin.files.admin_socket)
    runtime.execute("set server predict/v2 weight 60")
    runtime.execute("set server feedback/v1 state maint")
    assert router.admin.routes() == applied
    assert _live_weights(router) == _live_weights(router, "feedback") == {"v1": 90, "v2": 10}


def test_a_table_written_while_the_router_is_down_is_persisted_and_served_at_its_start(
    haproxy_installed: None, backends: dict[str, str], tmp_path: Path
) -> None:
    first = as_routes(split_table(backends, 100, 0))
    with running_router(tmp_path, first) as router:
        admin = router.admin
    with pytest.raises(RouterUnavailableError, match="the router is not running"):
        admin.set_routes(split_table(backends, 60, 40))
    assert admin.files.load() == RouteTable(split_table(backends, 60, 40).routes, 2)
    with running_router(tmp_path, first) as router:
        assert _live_weights(router) == {"v1": 60, "v2": 40}
        assert router.admin.routes().generation == 2


def test_no_router_ever_started_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RouterUnavailableError, match="was never started there"):
        LocalRouter(tmp_path).routes()


def test_the_admin_socket_is_the_owners_only(router: RunningRouter) -> None:
    files = router.admin.files
    assert stat.S_ISSOCK(files.admin_socket.stat().st_mode)
    assert stat.S_IMODE(files.admin_socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
