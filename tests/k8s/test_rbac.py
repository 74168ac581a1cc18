"""The controller's Role against the requests it really makes, across every scenario.

The double records each request as RBAC sees it (API group, resource/subresource, verb) and who
made it (the controller's User-Agent), so the Role from `mlcanary.k8s.rbac` is held to what the
controller does: everything it uses is granted, and nothing is granted that it does not use.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlcanary.k8s import rbac
from tests.k8s import scenarios
from tests.k8s.cluster import Cluster, running_cluster

Used = set[tuple[str, str, str]]
ROUTER_SCENARIOS: dict[str, list[Callable[[Cluster], scenarios.Outcome]]] = {
    "gateway-api": [
        lambda c: scenarios.rollout(c, "gateway-api"),
        lambda c: scenarios.rollout(c, "gateway-api", canary_accuracy=0.85),
        lambda c: scenarios.status_conflicts(c, conflicts=1),
        lambda c: scenarios.restart(c, first_ticks=6),
        scenarios.never_ready,
        lambda c: scenarios.command(c, "pause"),
        scenarios.invalid_spec,
        scenarios.deletion,
    ],
    "istio": [lambda c: scenarios.rollout(c, "istio")],
    "replicas": [lambda c: scenarios.rollout(c, "replicas", replicas=10)],
}


def _granted(permissions: list[rbac.Permission]) -> Used:
    return {(p.api_group, p.resource, verb) for p in permissions for verb in p.verbs}


@pytest.fixture(scope="module")
def used(takeover: scenarios.Outcome) -> dict[str, Used]:
    """What the controller did in every scenario; two replicas electing a leader and taking
    over (the takeover's outcome, shared with its own test) count for the gateway-api."""
    by_router: dict[str, Used] = {}
    for router, runs in ROUTER_SCENARIOS.items():
        by_router[router] = set()
        for run in runs:
            with running_cluster() as cluster:
                by_router[router] |= run(cluster).permissions
    by_router["gateway-api"] |= takeover.permissions
    return by_router


@pytest.mark.parametrize("router", sorted(ROUTER_SCENARIOS))
def test_the_role_grants_everything_the_controller_uses(used: dict[str, Used], router: str) -> None:
    assert used[router] <= _granted(rbac.permissions_for(router))


def test_the_role_grants_nothing_the_controller_does_not_use(used: dict[str, Used]) -> None:
    everything: Used = set().union(*used.values())
    granted: Used = set().union(*(_granted(rbac.permissions_for(r)) for r in ROUTER_SCENARIOS))
    assert granted - everything == set()


def test_the_role_grants_nothing_on_secrets_and_no_wildcards() -> None:
    for rule in rbac.role("serving", "gateway-api")["rules"]:
        assert not any(r.startswith("secrets") for r in rule["resources"])
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    assert rbac.role("serving", "istio")["kind"] == "Role"  # namespaced, never cluster-wide
