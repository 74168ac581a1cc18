from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from mlcanary.local.router import state as state_module
from mlcanary.local.router.state import (
    RouteState,
    StateFileError,
    check_forwardable,
    load_table,
    save_table,
)
from mlcanary.rollout.routers import Route, RouteTable, RouteTableError

STABLE = Route("v1", "http://127.0.0.1:3001", 100)
CANARY = Route("v2", "http://127.0.0.1:3002", 0)
START = RouteTable((STABLE, CANARY))
TEN_PERCENT = RouteTable((Route("v1", STABLE.url, 90), Route("v2", CANARY.url, 10)))


def test_saved_table_reloads_and_leaves_no_staging_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    save_table(path, RouteTable(START.routes, 7))
    save_table(path, RouteTable(TEN_PERCENT.routes, 8))
    assert load_table(path) == RouteTable(TEN_PERCENT.routes, 8)
    assert json.loads(path.read_text())["generation"] == 8
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]


def test_no_file_is_no_table(tmp_path: Path) -> None:
    assert load_table(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "does not hold a route table"),
        ('{"routes": [{"version": "v1", "url": "http://x", "weight": 90}]}', "routes: the weights"),
        ('{"routes": [{"version": "v1", "url": "svc", "weight": 100}]}', "routes[0].url"),
    ],
)
def test_a_bad_state_file_is_an_error_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "routes.json"
    path.write_text(content)
    with pytest.raises(StateFileError, match=r"routes\.json") as caught:
        load_table(path)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["digits-v2", "ftp://127.0.0.1:21", "http://", "http://h:0", "http://h:x", "http://h/?q=1"],
)
def test_the_proxy_needs_http_base_urls(url: str) -> None:
    with pytest.raises(RouteTableError) as caught:
        check_forwardable(RouteTable((STABLE, Route("v2", url, 0))))
    assert caught.value.field == "routes[1].url"


def test_a_path_prefix_is_a_valid_base_url() -> None:
    check_forwardable(RouteTable((Route("v1", "https://models.internal/digits/v1", 100),)))


def test_open_saves_the_initial_table_when_there_is_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "routes.json"
    state = RouteState.open(path, START)
    assert state.active.table == RouteTable(START.routes, 1)
    assert load_table(path) == state.active.table


def test_open_prefers_the_state_file_to_the_initial_routes(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    save_table(path, RouteTable(TEN_PERCENT.routes, 5))
    assert RouteState.open(path, START).active.table == RouteTable(TEN_PERCENT.routes, 5)


def test_open_needs_a_file_or_initial_routes(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="no initial routes"):
        RouteState.open(tmp_path / "routes.json", None)


def test_replace_saves_then_swaps_and_skips_unchanged_tables(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    state = RouteState.open(path, START)
    before = state.active
    applied = asyncio.run(state.replace(TEN_PERCENT))
    assert applied == RouteTable(TEN_PERCENT.routes, 2)
    assert load_table(path) == applied
    assert state.active is not before
    assert before.table == RouteTable(START.routes, 1)  # requests holding it keep their table
    mtime = path.stat().st_mtime_ns
    unchanged = state.active
    assert asyncio.run(state.replace(TEN_PERCENT)).generation == 2
    assert state.active is unchanged
    assert path.stat().st_mtime_ns == mtime


def test_a_table_that_cannot_be_saved_is_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "routes.json"
    state = RouteState.open(path, START)

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        asyncio.run(state.replace(TEN_PERCENT))
    monkeypatch.undo()
    assert state.active.table == RouteTable(START.routes, 1)
    assert load_table(path) == RouteTable(START.routes, 1)


def test_replace_checks_the_urls_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = RouteState.open(tmp_path / "routes.json", START)
    saved: list[RouteTable] = []
    monkeypatch.setattr(state_module, "save_table", lambda path, table: saved.append(table))
    with pytest.raises(RouteTableError):
        asyncio.run(state.replace(RouteTable((Route("v1", "digits-v1", 100),))))
    assert saved == []
