"""Real servers on 127.0.0.1 for the router tests: two tiny model backends and the proxy.

Each runs as its own process, the proxy through its CLI as in production, so that a restart
really starts from the state file. Ports are bound as port 0 (backends) or taken from the
kernel just before the start (proxy); every process is stopped when its fixture ends.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlcanary.local.router.admin import LocalRouter
from mlcanary.rollout.routers import Route, RouteTable
from mlcanary.serving.launcher import free_port, stop_server

START_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        stop_server(process, grace_s=10)


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def running_backend(version: str, directory: Path) -> Iterator[str]:
    port_file = directory / f"backend-{version}.port"
    log = directory / f"backend-{version}.log"
    command = [sys.executable, "-m", "tests.local.router.backend", version, str(port_file)]
    with _process(command, log) as process:
        _wait_until(port_file.exists, process, log, f"backend {version}")
        url = f"http://127.0.0.1:{port_file.read_text()}"
        _wait_until(lambda: _answers(url), process, log, f"backend {version}")
        yield url


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Base URLs of two running backends, by version."""
    directory = tmp_path_factory.mktemp("backends")
    with running_backend("v1", directory) as v1, running_backend("v2", directory) as v2:
        yield {"v1": v1, "v2": v2}


@contextlib.contextmanager
def running_proxy(state: Path, routes: list[str], *options: str) -> Iterator[str]:
    """The proxy CLI as a process on a free port; its base URL while the block runs."""
    port = free_port()
    command = [
        sys.executable, "-m", "mlcanary.local.router.cli", "serve",
        "--listen", f"127.0.0.1:{port}", "--state", str(state), "--log-level", "warning",
        *(arg for route in routes for arg in ("--route", route)), *options,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = state.with_name(f"proxy-{port}.log")
    with _process(command, log) as process:
        _wait_until(lambda: _ready(url), process, log, "proxy")
        yield url


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/readyz", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


StartProxy = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def start_proxy(tmp_path: Path) -> StartProxy:
    """Starts a proxy of this test's own, on ``tmp_path/routes.json``."""

    def start(routes: list[str], *options: str) -> AbstractContextManager[str]:
        return running_proxy(tmp_path / "routes.json", routes, *options)

    return start


def first_table(backends: dict[str, str]) -> RouteTable:
    """Everything to v1, with v2 routed at weight 0."""
    return RouteTable((Route("v1", backends["v1"], 100), Route("v2", backends["v2"], 0)))


@dataclass(frozen=True)
class RunningProxy:
    url: str
    state: Path


@pytest.fixture(scope="session")
def shared_proxy(
    backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    """One proxy process for the tests that do not restart it or need other options; starting a
    process per test would cost more than the tests themselves."""
    state = tmp_path_factory.mktemp("proxy") / "routes.json"
    routes = [f"{r.version}={r.url}={r.weight}" for r in first_table(backends).routes]
    with running_proxy(state, routes) as url:
        yield RunningProxy(url, state)


@pytest.fixture
def proxy(shared_proxy: RunningProxy, backends: dict[str, str]) -> RunningProxy:
    """The shared proxy, set back to `first_table` for this test. Its generation and counters go
    on from earlier tests, so tests compare them with what they read first."""
    LocalRouter(shared_proxy.url).set_routes(first_table(backends))
    return shared_proxy
