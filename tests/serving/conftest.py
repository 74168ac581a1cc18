from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from mlcanary.serving.launcher import ServeOptions, free_port, running_server

StartServer = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="session")
def start_server(session_dir: Path) -> StartServer:
    """Starts a real ``bentoml serve`` on a free loopback port; logs go to the session dir."""

    def start(model: str, workers: int = 1, **env: str) -> AbstractContextManager[str]:
        port = free_port()
        log = session_dir / f"serve-{model.replace(':', '-')}-{port}.log"
        options = ServeOptions(model=model, port=port, workers=workers, device="cpu", env=env)
        return running_server(options, log)

    return start


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, trained: object, start_server: StartServer
) -> Iterator[str]:
    with start_server(request.param) as url:
        yield url
