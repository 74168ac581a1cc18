"""The API server double, through the official client: the rules the controller relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoordinationV1Api,
    CustomObjectsApi,
    V1Lease,
    V1LeaseSpec,
    V1ObjectMeta,
)
from kubernetes.client.exceptions import ApiException

from mlcanary.k8s import crd
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.cluster import (
    NAME,
    NAMESPACE,
    Cluster,
    deployment_model,
    plain,
    rollout_document,
)

JSON_PATCH = "application/json-patch+json"


def _deployment(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**selector, **(labels or {})}},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "model", "image": "mlcanary:test"}]},
            },
        },
    }


def _create_rollout(custom: CustomObjectsApi, document: dict[str, Any]) -> dict[str, Any]:
    obj = custom.create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, document
    )
    assert isinstance(obj, dict)
    return obj


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body or "{}")
    return body


def test_create_assigns_identity_versions_and_defaults(cluster: Cluster) -> None:
    created = cluster.create_deployment(_deployment("a"))
    second = cluster.create_deployment(_deployment("b"))
    assert created["metadata"]["uid"] != second["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["creation_timestamp"] is not None
    versions = [int(o["metadata"]["resource_version"]) for o in (created, second)]
    assert versions[1] > versions[0]
    assert created["spec"]["replicas"] == 1  # defaulted, as the API server does


def test_missing_and_duplicate_objects_are_status_errors(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as missing:
        cluster.deployment("nothing")
    assert missing.value.status == 404
    assert _status(missing)["reason"] == "NotFound"
    cluster.create_deployment(_deployment("a"))
    with pytest.raises(ApiException) as duplicate:
        cluster.create_deployment(_deployment("a"))
    assert duplicate.value.status == 409
    assert _status(duplicate)["reason"] == "AlreadyExists"
    assert _status(duplicate)["kind"] == "Status"


def test_a_write_naming_a_stale_resource_version_is_a_conflict(cluster: Cluster) -> None:
    stale = cluster.create_deployment(_deployment("a"))["metadata"]["resource_version"]
    cluster.patch_deployment("a", {"spec": {"replicas": 2}})
    with pytest.raises(ApiException) as conflict:
        cluster.patch_deployment(
            "a", {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 3}}
        )
    assert conflict.value.status == 409
    assert _status(conflict)["reason"] == "Conflict"
    assert cluster.deployment("a")["spec"]["replicas"] == 2


def test_generation_counts_spec_changes_only(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a"))
    labelled = cluster.patch_deployment("a", {"metadata": {"labels": {"tier": "x"}}})
    assert labelled["metadata"]["generation"] == 1
    scaled = cluster.patch_deployment("a", {"spec": {"replicas": 4}})
    assert scaled["metadata"]["generation"] == 2
    unchanged = cluster.patch_deployment("a", {"spec": {"replicas": 4}})
    assert unchanged["metadata"]["resource_version"] == scaled["metadata"]["resource_version"]


def test_the_status_subresource_splits_writes(cluster: Cluster) -> None:
    custom = cluster.custom
    created = _create_rollout(custom, {**rollout_document("gateway-api"), "status": {"x": 1}})
    assert "status" not in created  # dropped on create
    written = custom.replace_namespaced_custom_object_status(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
        {**created, "spec": {**created["spec"], "model": "other"}, "status": {"message": "hi"}},
    )  # fmt: skip
    assert isinstance(written, dict)
    assert written["status"] == {"message": "hi"}
    assert written["spec"]["model"] == "digits"  # /status changes nothing else
    assert written["metadata"]["generation"] == 1
    patched = custom.patch_namespaced_custom_object(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
        {"spec": {"steps": [20, 100]}, "status": {"message": "ignored"}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert isinstance(patched, dict)
    assert patched["status"] == {"message": "hi"}  # the object's writes keep the status
    assert patched["metadata"]["generation"] == 2


def test_objects_failing_their_schema_are_refused_with_422(cluster: Cluster) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["steps"] = "ten then all"
    with pytest.raises(ApiException) as refused:
        _create_rollout(cluster.custom, document)
    assert refused.value.status == 422
    status = _status(refused)
    assert status["reason"] == "Invalid"
    assert any(cause["field"].endswith("spec.steps") for cause in status["details"]["causes"])
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "digits"},
        "spec": {"rules": [{"backendRefs": [{"name": "digits-v1", "port": 3000, "weight": -1}]}]},
    }
    with pytest.raises(ApiException) as negative:
        cluster.custom.create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", route
        )
    assert negative.value.status == 422
    assert "weight" in _status(negative)["message"]


def test_patches_merge_json_and_strategic(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a", {"drop": "me"}))
    replace = [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    assert cluster.patch_deployment("a", replace, JSON_PATCH)["spec"]["replicas"] == 3
    strategic = cluster.patch_deployment(
        "a",
        {"metadata": {"labels": {"drop": None}}},
        "application/strategic-merge-patch+json",
    )
    assert "drop" not in strategic["metadata"]["labels"]
    test = [{"op": "test", "path": "/spec/replicas", "value": 9}]
    with pytest.raises(ApiException) as failed_test:
        cluster.patch_deployment("a", test, JSON_PATCH)
    assert failed_test.value.status == 422


def test_lists_filter_by_label_selector(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a", {"tier": "gold"}))
    cluster.create_deployment(_deployment("b", {"tier": "lead"}))
    cluster.create_deployment(_deployment("c"))

    def names(selector: str) -> list[str]:
        listing = plain(cluster.apps.list_namespaced_deployment(NAMESPACE, label_selector=selector))
        return [d["metadata"]["name"] for d in listing["items"]]

    assert names("tier=gold") == ["a"]
    assert names("tier!=gold") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("tier in (gold,lead),app!=b") == ["a"]
    with pytest.raises(ApiException) as bad:
        names("tier=(")
    assert bad.value.status == 400


def test_the_scale_subresource_reads_and_writes_replicas(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a"))
    scale = cluster.apps.patch_namespaced_deployment_scale(
        "a", NAMESPACE, {"spec": {"replicas": 5}}, _content_type="application/merge-patch+json"
    )
    assert plain(scale)["spec"]["replicas"] == 5
    assert cluster.deployment("a")["spec"]["replicas"] == 5
    assert ("apps", "deployments/scale", "patch") in cluster.double.permissions_used()


def test_mark_ready_plays_the_deployment_controller(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a"))
    cluster.patch_deployment("a", {"spec": {"replicas": 3}})
    cluster.double.mark_ready(NAMESPACE, "a", ready=2)
    status = cluster.deployment("a")["status"]
    assert (status["observed_generation"], status["ready_replicas"], status["replicas"]) == (
        2,
        2,
        3,
    )


def test_watch_streams_changes_and_expires_after_compaction(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("before"))
    since = plain(cluster.apps.list_namespaced_deployment(NAMESPACE))["metadata"]
    cluster.create_deployment(_deployment("a"))
    cluster.apps.delete_namespaced_deployment("a", NAMESPACE)

    def watched() -> list[tuple[str, str]]:
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        events = stream.stream(  # type: ignore[no-untyped-call]
            cluster.apps.list_namespaced_deployment,
            NAMESPACE,
            resource_version=since["resource_version"],
            timeout_seconds=1,
        )
        return [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events]

    assert watched() == [("ADDED", "a"), ("DELETED", "a")]
    cluster.double.compact()
    with pytest.raises(ApiException) as gone:
        watched()
    assert gone.value.status == 410


def test_faults_answer_the_next_matching_requests(cluster: Cluster) -> None:
    cluster.create_deployment(_deployment("a"))
    cluster.double.fail_next(503, verb="get", resource="deployments", times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            cluster.deployment("a")
        assert failed.value.status == 503
    assert cluster.deployment("a")["metadata"]["name"] == "a"


def test_requests_are_recorded_as_rbac_sees_them() -> None:
    with ApiServerDouble() as double, ApiClient(double.configuration()) as client:
        client.user_agent = "someone"
        AppsV1Api(client).create_namespaced_deployment(
            NAMESPACE, deployment_model(_deployment("a"))
        )
        AppsV1Api(client).list_namespaced_deployment(NAMESPACE)
    assert double.permissions_used("someone") == {
        ("apps", "deployments", "create"),
        ("apps", "deployments", "list"),
    }
    assert double.permissions_used("nobody") == set()


def _lease(name: str, renew_time: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": renew_time},
    }


def test_leases_are_written_only_naming_the_version_read(cluster: Cluster) -> None:
    leases = ("coordination.k8s.io", "v1", NAMESPACE, "leases")
    with pytest.raises(ApiException) as missing:
        cluster.custom.get_namespaced_custom_object(*leases, "ctl")
    assert (missing.value.status, _status(missing)["reason"]) == (404, "NotFound")
    created = cluster.custom.create_namespaced_custom_object(
        *leases, _lease("ctl", "2026-01-01T00:00:00.000000Z")
    )
    assert isinstance(created, dict)
    with pytest.raises(ApiException) as duplicate:
        cluster.custom.create_namespaced_custom_object(*leases, created)
    assert (duplicate.value.status, _status(duplicate)["reason"]) == (409, "AlreadyExists")
    renewed = {**created, "spec": {**created["spec"], "renewTime": "2026-01-01T00:00:02.000000Z"}}
    written = cluster.custom.replace_namespaced_custom_object(*leases, "ctl", renewed)
    assert isinstance(written, dict)
    versions = [int(o["metadata"]["resourceVersion"]) for o in (created, written)]
    assert versions[1] > versions[0]
    with pytest.raises(ApiException) as stale:
        cluster.custom.replace_namespaced_custom_object(*leases, "ctl", renewed)
    assert (stale.value.status, _status(stale)["reason"]) == (409, "Conflict")
    unconditional = {**written, "metadata": {"name": "ctl"}}
    with pytest.raises(ApiException) as blind:
        cluster.custom.replace_namespaced_custom_object(*leases, "ctl", unconditional)
    assert (blind.value.status, _status(blind)["reason"]) == (422, "Invalid")
    assert "resourceVersion" in _status(blind)["message"]


def test_a_lease_time_without_its_six_fraction_digits_is_a_bad_request(cluster: Cluster) -> None:
    leases = ("coordination.k8s.io", "v1", NAMESPACE, "leases")
    for renew_time in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123Z"):
        with pytest.raises(ApiException) as refused:
            cluster.custom.create_namespaced_custom_object(*leases, _lease("ctl", renew_time))
        assert (refused.value.status, _status(refused)["reason"]) == (400, "BadRequest")
        assert renew_time in _status(refused)["message"]
    # What the official client's models write for a time at a whole second (isoformat()).
    whole = datetime(2026, 1, 1, tzinfo=UTC)
    spec = V1LeaseSpec(holder_identity="a", renew_time=whole)
    lease = V1Lease(metadata=V1ObjectMeta(name="typed"), spec=spec)
    with pytest.raises(ApiException) as typed:
        CoordinationV1Api(cluster.client).create_namespaced_lease(NAMESPACE, lease)
    assert typed.value.status == 400
    late = V1LeaseSpec(holder_identity="a", renew_time=whole.replace(microsecond=1))
    fraction = V1Lease(metadata=V1ObjectMeta(name="fraction"), spec=late)
    assert CoordinationV1Api(cluster.client).create_namespaced_lease(NAMESPACE, fraction)
