"""``mlcanary router serve | routes | set-weights``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcanary.local.router import cli as router_cli
from mlcanary.local.router.cli import parse_listen, parse_route, router_app
from mlcanary.rollout.routers import Route
from tests.local.router.conftest import RunningRouter

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(router_app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _state_dir(router: RunningRouter) -> str:
    return str(router.admin.files.directory.parent)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--route", "v1=http://127.0.0.1:1=90"], "the weights must add up to 100, not 90"),
        (["--route", "v1=http://127.0.0.1:1"], "expected VERSION=URL=WEIGHT"),
        (["--route", "V1=http://127.0.0.1:1=100"], "version: must be a model version name"),
        (["--route", "v1=http://localhost:1=100"], "must be http://IP:PORT"),
        (["--route", "v1=http://127.0.0.1:1=100", "--listen", "127.0.0.1"], "HOST:PORT"),
    ],
)
def test_serve_rejects_bad_arguments_before_starting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = _invoke("serve", "--state-dir", str(tmp_path), *args)
    assert code == 2
    assert message in output
    assert not (tmp_path / "router").exists()


def test_serve_needs_routes_or_a_state_file(tmp_path: Path) -> None:
    code, output = _invoke("serve", "--state-dir", str(tmp_path))
    assert code == 1
    assert "no --route to start from" in output


def test_serve_refuses_a_corrupt_state_file_rather_than_the_initial_routes(tmp_path: Path) -> None:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "routes.json").write_text('{"routes": "v1"}')
    code, output = _invoke(
        "serve", "--state-dir", str(tmp_path), "--route", "v1=http://127.0.0.1:1=100"
    )
    assert code == 1
    assert "does not hold a route table" in output


def test_serve_names_a_missing_haproxy_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_cli, "haproxy_binary", lambda: None)
    result = runner.invoke(
        router_app,
        ["serve", "--state-dir", str(tmp_path), "--route", "v1=http://127.0.0.1:1=100"],
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: haproxy is not installed; the local router runs it: apt-get install haproxy"
    ]
    assert not (tmp_path / "router").exists()


def test_parsers() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_route("v1=http://h:1/p=2=10") == Route("v1", "http://h:1/p=2", 10)


@pytest.mark.integration
def test_routes_and_set_weights_through_the_state_directory(router: RunningRouter) -> None:
    state_dir = ["--state-dir", _state_dir(router)]
    code, output = _invoke("routes", *state_dir, "--json")
    assert code == 0, output
    start = json.loads(output)
    assert start == router.admin.routes().to_json()

    code, output = _invoke("set-weights", "v1=90", "v2=10", *state_dir)
    assert code == 0, output
    assert f"generation {start['generation'] + 1}" in output
    code, output = _invoke("set-weights", "v2=100", *state_dir)
    assert code == 0, output
    table = router.admin.routes()
    assert table.weights == {"v1": 0, "v2": 100}
    assert table.generation == start["generation"] + 2

    code, output = _invoke("set-weights", "v9=100", *state_dir)
    assert code == 2
    assert "v9 not routed" in output
    code, output = _invoke("set-weights", "v1=50", *state_dir)
    assert code == 1
    assert "add up to 100, not 50" in output


def test_routes_reports_a_router_that_never_ran(tmp_path: Path) -> None:
    code, output = _invoke("routes", "--state-dir", str(tmp_path))
    assert code == 1
    assert "the router was never started there" in output
