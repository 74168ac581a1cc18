from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s import scenarios
from tests.k8s.cluster import Cluster, running_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture(scope="session")
def takeover() -> scenarios.Outcome:
    """Two replicas and a takeover (`scenarios.takeover`), run once for the tests that read it:
    the takeover's own and the Role's."""
    with running_cluster() as running:
        return scenarios.takeover(running)
