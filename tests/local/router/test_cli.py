from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlcanary.local.router.cli import parse_listen, parse_route, router_app
from mlcanary.rollout.routers import Route
from mlcanary.serving.launcher import free_port
from tests.local.router.conftest import RunningProxy

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def _serve(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(router_app, ["serve", "--state", str(tmp_path / "routes.json"), *args])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "192.0.2.10:8080", "example.com:80"])
def test_serve_refuses_a_non_loopback_address_without_the_flag(tmp_path: Path, listen: str) -> None:
    code, output = _serve(tmp_path, "--listen", listen, "--route", "v1=http://127.0.0.1:1=100")
    assert code == 2
    assert "no authentication" in output
    assert "--allow-remote-admin" in output
    assert not (tmp_path / "routes.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--route", "v1=http://127.0.0.1:1=90"], "the weights must add up to 100, not 90"),
        (["--route", "v1=http://127.0.0.1:1"], "expected VERSION=URL=WEIGHT"),
        (["--route", "V1=http://127.0.0.1:1=100"], "version: must be a model version name"),
        (["--route", "v1=http://127.0.0.1:1=100", "--listen", "127.0.0.1"], "HOST:PORT"),
    ],
)
def test_serve_rejects_bad_arguments_before_starting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = _serve(tmp_path, *args)
    assert code == 2
    assert message in output


def test_serve_needs_routes_or_a_state_file(tmp_path: Path) -> None:
    code, output = _serve(tmp_path)
    assert code == 1
    assert "no initial routes" in output


def test_serve_refuses_a_corrupt_state_file_rather_than_the_initial_routes(tmp_path: Path) -> None:
    (tmp_path / "routes.json").write_text('{"routes": "v1"}')
    code, output = _serve(tmp_path, "--route", "v1=http://127.0.0.1:1=100")
    assert code == 1
    assert "does not hold a route table" in output


def test_parsers() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_route("v1=http://h:1/p=2=10") == Route("v1", "http://h:1/p=2", 10)


def test_routes_and_set_weights_through_the_admin_api(proxy: RunningProxy) -> None:
    admin = ["--admin", proxy.url]
    shown = runner.invoke(router_app, ["routes", *admin, "--json"])
    assert shown.exit_code == 0, shown.output
    start = json.loads(shown.output)
    assert start == httpx.get(f"{proxy.url}/-/routes", trust_env=False).json()

    changed = runner.invoke(router_app, ["set-weights", "v1=90", "v2=10", *admin])
    assert changed.exit_code == 0, changed.output
    assert f"generation {start['generation'] + 1}" in changed.output
    everything = runner.invoke(router_app, ["set-weights", "v2=100", *admin])
    assert everything.exit_code == 0, everything.output
    table = httpx.get(f"{proxy.url}/-/routes", trust_env=False).json()
    assert {r["version"]: r["weight"] for r in table["routes"]} == {"v1": 0, "v2": 100}
    assert table["generation"] == start["generation"] + 2

    unknown = runner.invoke(router_app, ["set-weights", "v9=100", *admin])
    assert unknown.exit_code == 2
    assert "v9 not routed" in " ".join(unknown.output.split())
    short = runner.invoke(router_app, ["set-weights", "v1=50", *admin])
    assert short.exit_code == 1
    assert "add up to 100, not 50" in " ".join(short.output.split())


def test_routes_reports_a_proxy_that_is_down() -> None:
    result = runner.invoke(router_app, ["routes", "--admin", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "cannot reach the router" in " ".join(result.output.split())
