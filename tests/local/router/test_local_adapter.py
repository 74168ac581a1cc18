"""The controller's adapter against the real proxy process, and against no proxy at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mlcanary.local.router.admin import LocalRouter
from mlcanary.rollout.routers import Route, RouterUnavailableError, RouteTable, RouteTableError
from mlcanary.rollout.routers.base import StaleRoutesError
from mlcanary.serving.launcher import free_port
from tests.local.router.conftest import RunningProxy, first_table


def test_reads_and_replaces_the_table(proxy: RunningProxy, backends: dict[str, str]) -> None:
    router = LocalRouter(proxy.url)
    start = router.routes()
    assert start.routes == first_table(backends).routes
    canary = RouteTable((Route("v1", backends["v1"], 90), Route("v2", backends["v2"], 10)))
    applied = router.set_routes(canary)
    assert applied == RouteTable(canary.routes, start.generation + 1)
    assert router.set_routes(canary) == applied  # same routes: nothing to apply
    assert router.routes() == applied


def test_a_write_over_a_generation_that_moved_on_is_refused(
    proxy: RunningProxy, backends: dict[str, str]
) -> None:
    router = LocalRouter(proxy.url)
    read = router.routes()
    meanwhile = router.set_routes(
        RouteTable((Route("v1", backends["v1"], 90), Route("v2", backends["v2"], 10)))
    )
    late = RouteTable((Route("v1", backends["v1"], 50), Route("v2", backends["v2"], 50)))
    with pytest.raises(StaleRoutesError) as caught:
        router.set_routes(late, if_generation=read.generation)
    assert (caught.value.expected, caught.value.actual) == (read.generation, meanwhile.generation)
    assert router.routes() == meanwhile
    assert router.set_routes(late, if_generation=meanwhile.generation).weights == {
        "v1": 50,
        "v2": 50,
    }


def test_a_refused_table_is_a_table_error_naming_the_field(proxy: RunningProxy) -> None:
    router = LocalRouter(proxy.url)
    before = router.routes()
    with pytest.raises(RouteTableError) as caught:
        router.set_routes(RouteTable((Route("v1", "digits-v1", 100),)))
    assert caught.value.field == "routes[0].url"
    assert router.routes() == before


def test_a_proxy_that_is_down_is_unavailable() -> None:
    router = LocalRouter(f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    with pytest.raises(RouterUnavailableError, match="cannot reach the router"):
        router.routes()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_proxy_that_does_not_answer_is_unavailable_after_the_timeout(
    silent_listener: str,
) -> None:
    router = LocalRouter(silent_listener, timeout_s=0.3)
    table = RouteTable((Route("v1", "http://127.0.0.1:1", 100),))
    with pytest.raises(RouterUnavailableError, match=r"did not answer within 0.3s"):
        router.set_routes(table)


def test_something_else_at_the_address_is_unavailable(backends: dict[str, str]) -> None:
    with pytest.raises(RouterUnavailableError, match=r"answered GET /-/routes with 404"):
        LocalRouter(backends["v1"]).routes()


def test_the_admin_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        LocalRouter("127.0.0.1:8080")
