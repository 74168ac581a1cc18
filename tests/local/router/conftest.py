"""Real processes on 127.0.0.1 for the router tests: tiny model backends and the router.

The router runs through its CLI as in production (``mlcanary router serve`` renders HAProxy's
configuration from the state directory and becomes HAProxy), so a restart really starts from
the persisted table. Ports are bound as port 0 (backends) or taken from the kernel just before
the start (router); every process is stopped when its fixture ends.

HAProxy is a Debian package that ``scripts/install-system-deps.sh`` installs: without it these
tests skip and say why, and in CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlcanary.local.router.admin import LocalRouter
from mlcanary.local.router.state import RouterFiles
from mlcanary.rollout.routers import Route, RouteTable
from mlcanary.serving.launcher import free_port, stop_server

START_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def haproxy_installed() -> None:
    if shutil.which("haproxy") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("haproxy is not installed; scripts/install-system-deps.sh installs it")
    pytest.skip("haproxy is not installed (apt-get install haproxy)")


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


@dataclass(frozen=True)
class Backend:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_backend(version: str, directory: Path) -> Iterator[Backend]:
    port_file = directory / f"backend-{version}-{time.monotonic_ns()}.port"
    log = directory / f"backend-{version}.log"
    command = [sys.executable, "-m", "tests.local.router.backend", version, str(port_file)]
    with _process(command, log) as process:
        _wait_until(port_file.exists, process, log, f"backend {version}")
        url = f"http://127.0.0.1:{port_file.read_text()}"
        _wait_until(lambda: _answers(url), process, log, f"backend {version}")
        yield Backend(url, process)


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Base URLs of two running backends, by version, shared by the tests that kill neither."""
    directory = tmp_path_factory.mktemp("backends")
    with running_backend("v1", directory) as v1, running_backend("v2", directory) as v2:
        yield {"v1": v1.url, "v2": v2.url}


@dataclass(frozen=True)
class RunningRouter:
    url: str
    admin: LocalRouter
    process: subprocess.Popen[bytes]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/readyz", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def serve_command(state_dir: Path, port: int, routes: list[str], *options: str) -> list[str]:
    return [
        sys.executable, "-m", "mlcanary.local.router.cli", "serve",
        "--state-dir", str(state_dir), "--listen", f"127.0.0.1:{port}",
        *(arg for route in routes for arg in ("--route", route)), *options,
    ]  # fmt: skip


@contextlib.contextmanager
def running_router(
    state_dir: Path, routes: list[str], *options: str, port: int | None = None
) -> Iterator[RunningRouter]:
    """The router CLI as a process; its base URL and admin adapter while the block runs."""
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    log = state_dir / f"router-{port}.log"
    with _process(serve_command(state_dir, port, routes, *options), log) as process:
        _wait_until(lambda: _ready(url), process, log, "router")
        directory = RouterFiles.of_platform(state_dir).directory
        yield RunningRouter(url, LocalRouter(directory), process)


def as_routes(table: RouteTable) -> list[str]:
    """``--route`` arguments for the table."""
    return [f"{r.version}={r.url}={r.weight}" for r in table.routes]


def split_table(backends: dict[str, str], v1: int, v2: int) -> RouteTable:
    return RouteTable((Route("v1", backends["v1"], v1), Route("v2", backends["v2"], v2)))


@pytest.fixture(scope="session")
def shared_router(
    haproxy_installed: None, backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRouter]:
    """One router process for the tests that neither restart it nor kill a backend; starting a
    process per test would cost more than the tests themselves."""
    state_dir = tmp_path_factory.mktemp("router")
    with running_router(state_dir, as_routes(split_table(backends, 100, 0))) as router:
        yield router


@pytest.fixture
def router(shared_router: RunningRouter, backends: dict[str, str]) -> RunningRouter:
    """The shared router, set back to v1 100% and v2 0% for this test. Its generation and
    counters go on from earlier tests, so tests compare them with what they read first."""
    shared_router.admin.set_routes(split_table(backends, 100, 0))
    return shared_router
