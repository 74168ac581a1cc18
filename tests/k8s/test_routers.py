"""The Kubernetes routers against the double, with the manifests `mlcanary k8s render` writes."""

from __future__ import annotations

import pytest

from mlcanary.k8s.routers.gateway_api import GatewayApiRouter
from mlcanary.k8s.routers.istio import IstioRouter
from mlcanary.k8s.routers.replicas import ReplicasRouter
from mlcanary.k8s.routers.shares import apportion
from mlcanary.rollout.routers.base import Route, RouterUnavailableError, RouteTable, RouteTableError
from tests.k8s.cluster import MODEL, NAMESPACE, Cluster, rollout_document

VERSIONS = ("v1", "v2")


def _table(**weights: int) -> RouteTable:
    return RouteTable(tuple(Route(v, f"{MODEL}-{v}", w) for v, w in weights.items()))


def test_the_gateway_router_reads_and_sets_backend_weights_in_one_write(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    router = GatewayApiRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    assert router.routes().weights == {"v1": 100, "v2": 0}
    before = len(cluster.double.requests)
    applied = router.set_routes(_table(v1=90, v2=10))
    writes = [r for r in cluster.double.requests[before:] if r.verb != "get"]
    assert [(w.resource, w.verb) for w in writes] == [("httproutes", "patch")]
    assert applied.weights == router.routes().weights == {"v1": 90, "v2": 10}
    assert applied.generation == 2
    ref = cluster.route("httproutes")["spec"]["rules"][0]["backendRefs"][1]
    assert ref == {"group": "", "kind": "Service", "name": "digits-v2", "port": 3000, "weight": 10}


def test_a_concurrent_edit_is_a_conflict_retried_on_a_fresh_read(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    router = GatewayApiRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    cluster.double.fail_next(409, verb="patch", resource="httproutes", times=2)
    assert router.set_routes(_table(v1=90, v2=10)).weights == {"v1": 90, "v2": 10}
    patches = [r for r in cluster.double.requests if r.verb == "patch"]
    assert len(patches) == 3


def test_endless_conflicts_leave_the_router_unavailable_for_this_tick(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    router = GatewayApiRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    cluster.double.fail_next(409, verb="patch", resource="httproutes", times=50)
    with pytest.raises(RouterUnavailableError, match="changed under every one of 5 writes"):
        router.set_routes(_table(v1=90, v2=10))
    assert cluster.httproute_weights() == {"v1": 100, "v2": 0}


def test_a_missing_route_object_is_named(cluster: Cluster) -> None:
    router = GatewayApiRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    with pytest.raises(RouterUnavailableError, match="HTTPRoute serving/digits does not exist"):
        router.routes()


def test_a_backend_of_another_rollout_is_refused(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    router = GatewayApiRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    table = RouteTable((Route("v9", "digits-v9", 100),))
    with pytest.raises(RouteTableError, match="digits-v9 is not the Service"):
        router.set_routes(table)


def test_the_istio_router_sets_destination_weights(cluster: Cluster) -> None:
    cluster.install(rollout_document("istio"))
    router = IstioRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS)
    assert router.routes().weights == {"v1": 100, "v2": 0}
    router.set_routes(_table(v2=100))
    [route] = cluster.route("virtualservices")["spec"]["http"][0]["route"]
    assert route == {"destination": {"host": "digits-v2", "port": {"number": 3000}}, "weight": 100}
    assert router.routes().weights == {"v2": 100}


def test_the_istio_router_reads_fully_qualified_hosts(cluster: Cluster) -> None:
    cluster.install(rollout_document("istio"))
    cluster.custom.patch_namespaced_custom_object(
        "networking.istio.io", "v1", NAMESPACE, "virtualservices", "digits",
        [{"op": "replace", "path": "/spec/http/0/route/0/destination/host",
          "value": "digits-v1.serving.svc.cluster.local"}],
        _content_type="application/json-patch+json",
    )  # fmt: skip
    assert IstioRouter(cluster.custom, NAMESPACE, MODEL, VERSIONS).routes().weights == {
        "v1": 100,
        "v2": 0,
    }


def test_the_replicas_router_reports_the_share_it_can_reach(cluster: Cluster) -> None:
    cluster.install(rollout_document("replicas", replicas=3))
    router = ReplicasRouter(cluster.apps, NAMESPACE, MODEL, VERSIONS, total=3)
    applied = router.set_routes(_table(v1=90, v2=10))
    assert cluster.replicas() == {"v1": 2, "v2": 1}
    assert applied.weights == router.routes().weights == {"v1": 67, "v2": 33}


def test_the_replicas_router_scales_the_growing_version_first(cluster: Cluster) -> None:
    cluster.install(rollout_document("replicas", replicas=10))
    router = ReplicasRouter(cluster.apps, NAMESPACE, MODEL, VERSIONS, total=10)
    router.set_routes(_table(v1=90, v2=10))
    before = len(cluster.double.requests)
    router.set_routes(_table(v1=0, v2=100))
    patched = [r.name for r in cluster.double.requests[before:] if r.verb == "patch"]
    assert patched == ["digits-v2", "digits-v1"]
    assert cluster.replicas() == {"v1": 0, "v2": 10}


@pytest.mark.parametrize(
    ("total", "weights", "keep", "expected"),
    [
        (100, [90, 10], False, [90, 10]),
        (100, [1, 1, 1], False, [34, 33, 33]),
        (3, [90, 10], False, [3, 0]),
        (3, [90, 10], True, [2, 1]),
        (10, [0, 100], True, [0, 10]),
    ],
)
def test_apportion_adds_up_and_keeps_every_served_version(
    total: int, weights: list[int], keep: bool, expected: list[int]
) -> None:
    assert apportion(total, weights, keep_positive=keep) == expected


def test_apportion_refuses_no_weight() -> None:
    with pytest.raises(ValueError, match="not all 0"):
        apportion(10, [0, 0])
