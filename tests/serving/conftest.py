from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import StartServer


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, trained: object, start_server: StartServer
) -> Iterator[str]:
    with start_server(request.param) as url:
        yield url
