"""The router's directory: the persisted table, its checks, the private directory."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mlcanary.local.router.state import RouterFiles, StateFileError, check_forwardable
from mlcanary.rollout.routers import Route, RouteTable, RouteTableError

STABLE = Route("v1", "http://127.0.0.1:3001", 100)
CANARY = Route("v2", "http://127.0.0.1:3002", 0)
START = RouteTable((STABLE, CANARY))
TEN_PERCENT = RouteTable((Route("v1", STABLE.url, 90), Route("v2", CANARY.url, 10)))


def test_a_saved_table_reloads_and_leaves_no_staging_file(tmp_path: Path) -> None:
    files = RouterFiles(tmp_path)
    files.save(RouteTable(START.routes, 7))
    files.save(RouteTable(TEN_PERCENT.routes, 8))
    assert files.load() == RouteTable(TEN_PERCENT.routes, 8)
    assert json.loads(files.table.read_text())["generation"] == 8
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]


def test_no_file_is_no_table(tmp_path: Path) -> None:
    assert RouterFiles(tmp_path).load() is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "does not hold a route table"),
        (
            '{"routes": [{"version": "v1", "url": "http://127.0.0.1:1", "weight": 90}]}',
            "routes: the weights",
        ),
        ('{"routes": [{"version": "v1", "url": "svc", "weight": 100}]}', "routes[0].url"),
    ],
)
def test_a_bad_state_file_is_an_error_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    files = RouterFiles(tmp_path)
    files.table.write_text(content)
    with pytest.raises(StateFileError, match=r"routes\.json") as caught:
        files.load()
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "digits-v2",
        "https://127.0.0.1:3000",
        "http://localhost:3000",
        "http://127.0.0.1",
        "http://127.0.0.1:0",
        "http://127.0.0.1:x",
        "http://127.0.0.1:3000/v2",
        "http://127.0.0.1:3000/?q=1",
    ],
)
def test_haproxy_needs_http_ip_and_port(url: str) -> None:
    with pytest.raises(RouteTableError) as caught:
        check_forwardable(RouteTable((STABLE, Route("v2", url, 0))))
    assert caught.value.field == "routes[1].url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:3000", "http://[::1]:3000/"])
def test_ip_addresses_of_both_families_are_forwardable(url: str) -> None:
    check_forwardable(RouteTable((Route("v1", url, 100),)))


def test_the_directory_is_private(tmp_path: Path) -> None:
    files = RouterFiles.of_platform(tmp_path / "state")
    files.prepare()
    assert files.directory == tmp_path / "state" / "router"
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700


def test_a_socket_path_longer_than_unix_allows_is_refused(tmp_path: Path) -> None:
    files = RouterFiles(tmp_path / ("x" * 100))
    with pytest.raises(ValueError, match="longer than a unix socket path may be"):
        files.prepare()
    assert not files.directory.exists()
