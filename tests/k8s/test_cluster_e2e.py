"""The controller's scenarios against a real cluster, when ``KUBECONFIG`` names one.

Each test renders the manifests with `mlcanary k8s render`, applies them into a fresh namespace
(the CRD once, cluster-wide), waits for the stable pods, runs the controller one tick at a time
(what ``mlcanary controller --once`` does) with scripted metrics, so that the outcome depends on
the API server's behaviour rather than on traffic, and deletes the namespace.

Needs: permission to create namespaces and CRDs; the images of digits v1 and v2 that
``mlcanary build`` makes, in the cluster: pushed with ``--push REPO`` and named by
``MLCANARY_E2E_IMAGE_REPO=REPO``, or by default the local tags ``mlcanary/digits:v1`` and
``:v2`` (with kind, ``kind load docker-image``). The replicas router needs nothing else; the
Gateway API scenario runs when the cluster serves HTTPRoutes.

Without ``KUBECONFIG`` the module is skipped, in CI as well: no cluster exists there, and the
same scenarios run against the API server double in tests/k8s.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import config
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1CustomResourceDefinition,
    V1Namespace,
    V1ObjectMeta,
)
from kubernetes.client.exceptions import ApiException

from mlcanary.k8s import crd, naming
from mlcanary.k8s.controller import RolloutController
from mlcanary.k8s.render import RenderOptions, render
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.spec import ModelRollout
from tests.k8s.cluster import MODEL, NAME, apply, plain, rollout_document
from tests.rollout.test_controller import stream

pytestmark = pytest.mark.e2e

if not os.environ.get("KUBECONFIG"):
    pytest.skip(
        "KUBECONFIG is not set: these tests need a real cluster; CI has none, so they are "
        "skipped there too (tests/k8s runs the same scenarios against the API double)",
        allow_module_level=True,
    )

READY_TIMEOUT_S = 300
TICK_S = 2


@pytest.fixture(scope="module")
def client() -> Iterator[ApiClient]:
    with config.new_client_from_config() as api_client:  # type: ignore[no-untyped-call]
        definition = V1CustomResourceDefinition.from_dict(crd.crd())
        assert definition is not None
        try:
            ApiextensionsV1Api(api_client).create_custom_resource_definition(definition)
        except ApiException as exc:
            if exc.status != 409:
                raise
        yield api_client


@pytest.fixture
def namespace(client: ApiClient) -> Iterator[str]:
    name = f"mlcanary-e2e-{secrets.token_hex(3)}"
    CoreV1Api(client).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    yield name
    CoreV1Api(client).delete_namespace(name)


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:g}s")
        time.sleep(1)


def _install(client: ApiClient, namespace: str, router: str, canary_image: str | None) -> None:
    document = rollout_document(router, **({"replicas": 4} if router == "replicas" else {}))
    document["spec"]["analysis"] = {"interval": f"{TICK_S}s", "minSamples": 100,
                                    "maxDuration": "30s"}  # fmt: skip
    options = RenderOptions(image_repo=os.environ.get("MLCANARY_E2E_IMAGE_REPO"))
    objects = render(
        ModelRollout.model_validate(document), gpu=False, namespace=namespace, options=options
    )
    served = {"Deployment", "Service", "HTTPRoute", "VirtualService", "ModelRollout"}
    chosen = [o for o in objects if o["kind"] in served]
    for obj in chosen:
        if obj["kind"] == "Deployment" and canary_image and obj["metadata"]["name"].endswith("v2"):
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = canary_image
    apply(client, namespace, chosen)

    def stable_ready() -> bool:
        deployment = plain(
            AppsV1Api(client).read_namespaced_deployment(naming.workload(MODEL, "v1"), namespace)
        )
        return bool((deployment.get("status") or {}).get("ready_replicas"))

    _until(stable_ready, READY_TIMEOUT_S, "the stable version's pods were not ready")


def _status(client: ApiClient, namespace: str) -> dict[str, Any]:
    obj = CustomObjectsApi(client).get_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, NAME
    )
    assert isinstance(obj, dict)
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _run(client: ApiClient, namespace: str, accuracy: float, ticks: int = 60) -> dict[str, Any]:
    """Tick once per interval (``--once`` loops) until the rollout finishes."""
    provider = ScriptedProvider(stream(ticks, accuracy))
    controller = RolloutController(client, namespace, metrics=lambda _rollout: provider, drain_s=0)
    try:
        for _ in range(ticks):
            controller.run_once()
            if _status(client, namespace).get("phase") in {"Succeeded", "RolledBack", "Failed"}:
                break
            time.sleep(TICK_S)
    finally:
        controller.close()
    return _status(client, namespace)


def test_a_good_canary_is_promoted_by_replica_counts(client: ApiClient, namespace: str) -> None:
    _install(client, namespace, "replicas", None)
    status = _run(client, namespace, 0.97)
    assert status["phase"] == "Succeeded"
    v1 = AppsV1Api(client).read_namespaced_deployment(naming.workload(MODEL, "v1"), namespace)
    assert plain(v1)["spec"]["replicas"] == 0


def test_a_regressed_canary_is_rolled_back(client: ApiClient, namespace: str) -> None:
    _install(client, namespace, "replicas", None)
    status = _run(client, namespace, 0.85)
    assert status["phase"] == "RolledBack"
    assert "accuracy" in status["message"]


def test_a_canary_that_never_becomes_ready_is_rolled_back_at_the_deadline(
    client: ApiClient, namespace: str
) -> None:
    _install(client, namespace, "replicas", "mlcanary.invalid/never:0")
    status = _run(client, namespace, 0.97)
    assert status["phase"] == "RolledBack"
    assert "maxDuration" in status["message"]


def test_deleting_the_rollout_stops_it(client: ApiClient, namespace: str) -> None:
    _install(client, namespace, "replicas", None)
    controller = RolloutController(
        client, namespace, metrics=lambda _r: ScriptedProvider(stream(60, 0.97)), drain_s=0
    )
    try:
        assert len(controller.run_once()) == 1
        CustomObjectsApi(client).delete_namespaced_custom_object(
            crd.GROUP, crd.VERSION, namespace, crd.PLURAL, NAME
        )
        assert controller.run_once() == []
        assert controller.active == []
    finally:
        controller.close()


def test_the_gateway_api_route_carries_the_weights(client: ApiClient, namespace: str) -> None:
    try:
        CustomObjectsApi(client).list_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes"
        )
    except ApiException as exc:
        if exc.status == 404:
            pytest.skip("the cluster does not serve Gateway API HTTPRoutes")
        raise
    _install(client, namespace, "gateway-api", None)
    status = _run(client, namespace, 0.97)
    assert status["phase"] == "Succeeded"
    route = CustomObjectsApi(client).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", naming.route(MODEL)
    )
    assert isinstance(route, dict)
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(ref["name"], ref["weight"]) for ref in refs] == [(naming.workload(MODEL, "v2"), 100)]
