from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s.cluster import Cluster, running_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running
