from __future__ import annotations

from typing import Any

import pytest

from mlcanary.rollout.routers import Route, RouterUnavailableError, RouteTable, RouteTableError
from mlcanary.rollout.routers.memory import MemoryRouter

V1 = Route("v1", "http://127.0.0.1:3001", 90)
V2 = Route("v2", "http://127.0.0.1:3002", 10)


def _document(**changes: Any) -> dict[str, Any]:
    routes = [V1.to_json(), V2.to_json()]
    for key, value in changes.items():
        index, field = key.split("__")
        routes[int(index.removeprefix("r"))][field] = value
    return {"generation": 3, "routes": routes}


def test_json_round_trip() -> None:
    table = RouteTable((V1, V2), generation=3)
    assert table.to_json() == _document()
    assert RouteTable.from_json(table.to_json()) == table
    assert table.weights == {"v1": 90, "v2": 10}
    assert table.route("v2") == V2
    assert table.route("v3") is None


def test_generation_is_optional_in_json() -> None:
    assert RouteTable.from_json({"routes": [V1.to_json() | {"weight": 100}]}).generation == 0


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (_document(r0__weight=150, r1__weight=-50), "routes[0].weight", "integer in 0..100"),
        (_document(r0__weight="90"), "routes[0].weight", "not '90'"),
        (_document(r0__weight=90.0), "routes[0].weight", "integer"),
        (_document(r1__weight=True), "routes[1].weight", "integer"),
        (_document(r1__weight=20), "routes", "add up to 100, not 110 (v1=90, v2=20)"),
        (_document(r1__version="v1"), "routes[1].version", "already routed by routes[0]"),
        (_document(r0__version="V1"), "routes[0].version", "model version name"),
        (_document(r0__version=1), "routes[0].version", "model version name"),
        (_document(r1__url=""), "routes[1].url", "non-empty"),
        (_document(r1__url=" http://x"), "routes[1].url", "without spaces"),
        (_document(r0__wieght=1), "routes[0].wieght", "not a known field"),
        ({"routes": [{"version": "v1", "url": "http://x"}]}, "routes[0].weight", "required"),
        ({"routes": ["v1"]}, "routes[0]", "must be an object"),
        ({"routes": []}, "routes", "at least one route"),
        ({"routes": {"v1": 100}}, "routes", "must be a list"),
        ({}, "routes", "must be a list"),
        ({"routes": [V1.to_json() | {"weight": 100}], "generation": -1}, "generation", ">= 0"),
        ({"routes": [V1.to_json() | {"weight": 100}], "extra": 1}, "extra", "not a known field"),
        ([], "$", "must be an object"),
    ],
)
def test_a_bad_table_names_the_field(document: object, field: str, message: str) -> None:
    with pytest.raises(RouteTableError) as caught:
        RouteTable.from_json(document)
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{field}: ")


def test_routes_and_tables_validate_when_built_in_code() -> None:
    with pytest.raises(RouteTableError, match=r"^weight: "):
        Route("v1", "http://x", 101)
    with pytest.raises(RouteTableError, match=r"^routes: the weights must add up to 100"):
        RouteTable((V1,))


def test_a_router_moves_the_generation_only_when_the_routes_change() -> None:
    held = RouteTable((V1, V2), generation=4)
    assert held.replaced_by(RouteTable((V1, V2), generation=99)) is held
    moved = held.replaced_by(
        RouteTable((Route("v1", V1.url, 0), Route("v2", V2.url, 100)), generation=99)
    )
    assert moved.generation == 5
    assert moved.weights == {"v1": 0, "v2": 100}


def test_memory_router_records_every_table_it_was_given() -> None:
    router = MemoryRouter(RouteTable((V1, V2), generation=1))
    half = RouteTable((Route("v1", V1.url, 50), Route("v2", V2.url, 50)))
    assert router.set_routes(half).generation == 2
    assert router.set_routes(half).generation == 2
    assert router.history == [half, half]
    assert router.routes().weights == {"v1": 50, "v2": 50}


def test_memory_router_can_stand_for_an_unreachable_router() -> None:
    router = MemoryRouter(RouteTable((V1, V2)))
    router.available = False
    with pytest.raises(RouterUnavailableError):
        router.routes()
    with pytest.raises(RouterUnavailableError):
        router.set_routes(RouteTable((V1, V2)))
    assert router.history == []
