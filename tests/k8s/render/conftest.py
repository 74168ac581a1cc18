"""Rollouts to render: the repository's cluster examples, one per Kubernetes router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlcanary.k8s.render import render
from mlcanary.rollout.routers.registry import ROUTERS as REGISTRY
from mlcanary.rollout.spec import ModelRollout, load_spec

EXAMPLES = Path(__file__).parents[3] / "rollout" / "examples"
ROUTERS = tuple(name for name, entry in REGISTRY.items() if entry.platform == "cluster")


def example(router: str = "gateway-api") -> ModelRollout:
    """The repository's cluster example for that router."""
    return load_spec((EXAMPLES / "kubernetes" / f"{router}.yaml").read_text())


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


@pytest.fixture(
    params=[(r, g) for r in ROUTERS for g in (False, True)],
    ids=lambda p: f"{p[0]}-{'gpu' if p[1] else 'cpu'}",
)
def rendered(request: pytest.FixtureRequest) -> tuple[str, bool, list[dict[str, Any]]]:
    router, gpu = request.param
    return router, gpu, render(example(router=router), gpu=gpu)
