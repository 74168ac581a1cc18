"""A test's cluster: the API server double, clients for the test and for the controller, the
manifests `mlcanary k8s render` writes applied to it, and readers for what a test checks."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1Deployment,
    V1Service,
)

from mlcanary.k8s import crd, naming
from mlcanary.k8s.controller import RolloutController
from mlcanary.k8s.leader import LEASE_GROUP, LEASE_PLURAL, LEASE_VERSION
from mlcanary.k8s.render import render
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.spec import ModelRollout
from tests.k8s.apiserver_double import ApiServerDouble
from tests.rollout.test_controller import stream

NAMESPACE = "serving"
MODEL = "digits"
NAME = "digits-v2"
INTERVAL_S = 10.0
# The kinds the double serves; the rest of a rendering (CRD, RBAC, autoscalers, monitoring)
# is for a real cluster.
SERVED = {"Deployment", "Service", "HTTPRoute", "VirtualService", "ModelRollout"}
MERGE_PATCH = "application/merge-patch+json"


def plain(model: Any) -> dict[str, Any]:
    """A client model as a dict with snake_case keys: what tests read, without Optional chains."""
    result: dict[str, Any] = model.to_dict()
    return result


def deployment_model(obj: dict[str, Any]) -> V1Deployment:
    model = V1Deployment.from_dict(obj)
    assert model is not None
    return model


def rollout_document(router: str, **router_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlcanary.dev/v1alpha1",
        "kind": "ModelRollout",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": MODEL,
            "stable": {"version": "v1"},
            "canary": {"version": "v2"},
            "router": {"type": router, **router_fields},
            "metrics": {"provider": "prometheus", "address": "http://prometheus:9090"},
            "steps": [10, 100],
            "analysis": {"interval": "10s", "minSamples": 100, "maxDuration": "2m"},
        },
    }


def apply(client: ApiClient, namespace: str, objects: Iterable[dict[str, Any]]) -> None:
    """Create each object through the API a controller would use for its kind."""
    for obj in objects:
        kind = obj["kind"]
        if kind == "Deployment":
            AppsV1Api(client).create_namespaced_deployment(namespace, deployment_model(obj))
        elif kind == "Service":
            service = V1Service.from_dict(obj)
            assert service is not None
            CoreV1Api(client).create_namespaced_service(namespace, service)
        else:
            group, version = obj["apiVersion"].split("/")
            plural = {"HTTPRoute": "httproutes", "VirtualService": "virtualservices"}.get(
                kind, crd.PLURAL
            )
            CustomObjectsApi(client).create_namespaced_custom_object(
                group, version, namespace, plural, obj
            )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Cluster:
    double: ApiServerDouble
    client: ApiClient
    clock: Clock = field(default_factory=Clock)
    providers: list[ScriptedProvider] = field(default_factory=list)

    @property
    def custom(self) -> CustomObjectsApi:
        return CustomObjectsApi(self.client)

    @property
    def apps(self) -> AppsV1Api:
        return AppsV1Api(self.client)

    @property
    def core(self) -> CoreV1Api:
        return CoreV1Api(self.client)

    def apply(self, objects: Iterable[dict[str, Any]]) -> None:
        apply(self.client, NAMESPACE, objects)

    def create_deployment(self, obj: dict[str, Any]) -> dict[str, Any]:
        return plain(self.apps.create_namespaced_deployment(NAMESPACE, deployment_model(obj)))

    def deployment(self, name: str) -> dict[str, Any]:
        return plain(self.apps.read_namespaced_deployment(name, NAMESPACE))

    def patch_deployment(
        self,
        name: str,
        body: dict[str, Any] | list[dict[str, Any]],
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return plain(
            self.apps.patch_namespaced_deployment(name, NAMESPACE, body, _content_type=content_type)
        )

    def install(self, document: dict[str, Any], *, ready: Iterable[str] = ("v1", "v2")) -> None:
        """Apply the rendering of ``document``; the listed versions' pods report ready."""
        rollout = ModelRollout.model_validate(document)
        objects = render(rollout, gpu=False, namespace=NAMESPACE)
        self.apply(o for o in objects if o["kind"] in SERVED)
        for version in ready:
            self.mark_ready(version)

    def mark_ready(self, version: str) -> None:
        self.double.mark_ready(NAMESPACE, naming.workload(MODEL, version))

    def controller(
        self,
        script: list[Any] | None = None,
        *,
        provider: ScriptedProvider | None = None,
        **options: Any,
    ) -> RolloutController:
        """A controller with its own client, reading ``provider`` or else ``script`` (good
        canary by default)."""
        if provider is None:
            provider = ScriptedProvider(script if script is not None else stream(60, 0.97))
        self.providers.append(provider)
        controller_client = ApiClient(self.double.configuration())
        self._clients.append(controller_client)
        return RolloutController(
            controller_client,
            NAMESPACE,
            metrics=lambda _rollout: provider,
            clock=self.clock,
            sleep=self.clock.sleep,
            **options,
        )

    _clients: list[ApiClient] = field(default_factory=list)

    def close(self) -> None:
        for controller_client in self._clients:
            controller_client.close()  # type: ignore[no-untyped-call]

    def rollout(self) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME
        )
        assert isinstance(obj, dict)
        return obj

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.rollout().get("status") or {}
        return status

    def lease(self) -> dict[str, Any]:
        """The controller replicas' Lease."""
        obj = self.custom.get_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, NAMESPACE, LEASE_PLURAL, naming.CONTROLLER
        )
        assert isinstance(obj, dict)
        return obj

    def lease_holders(self) -> list[str]:
        """The Lease's successive holders, oldest first, once per term ("" once handed back),
        from the versions the Lease has had."""
        versions = self.double.versions(
            LEASE_GROUP, LEASE_VERSION, LEASE_PLURAL, NAMESPACE, naming.CONTROLLER
        )
        holders = [lease["spec"]["holderIdentity"] for lease in versions]
        return [h for i, h in enumerate(holders) if i == 0 or holders[i - 1] != h]

    def route(self, plural: str) -> dict[str, Any]:
        group, version = {
            "httproutes": ("gateway.networking.k8s.io", "v1"),
            "virtualservices": ("networking.istio.io", "v1"),
        }[plural]
        obj = self.custom.get_namespaced_custom_object(
            group, version, NAMESPACE, plural, naming.route(MODEL)
        )
        assert isinstance(obj, dict)
        return copy.deepcopy(obj)

    def httproute_weights(self) -> dict[str, int]:
        refs = self.route("httproutes")["spec"]["rules"][0]["backendRefs"]
        return {ref["name"].removeprefix(f"{MODEL}-"): ref["weight"] for ref in refs}

    def virtualservice_weights(self) -> dict[str, int]:
        refs = self.route("virtualservices")["spec"]["http"][0]["route"]
        return {r["destination"]["host"].removeprefix(f"{MODEL}-"): r["weight"] for r in refs}

    def replicas(self) -> dict[str, int]:
        return {
            version: self.deployment(naming.workload(MODEL, version))["spec"]["replicas"]
            for version in ("v1", "v2")
        }

    def events(self) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events on the rollout, oldest first."""
        items = plain(self.core.list_namespaced_event(NAMESPACE))["items"]
        items.sort(key=lambda e: int(e["metadata"]["resource_version"]))
        return [
            (e["type"], e["reason"], e["message"])
            for e in items
            if e["involved_object"]["name"] == NAME
        ]


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    with ApiServerDouble() as double, ApiClient(double.configuration()) as client:
        cluster = Cluster(double, client)
        try:
            yield cluster
        finally:
            cluster.close()


def drive(
    cluster: Cluster, controller: RolloutController, observe: Any = None, ticks: int = 60
) -> None:
    """Tick on the fake clock until the rollout is no longer active (at most ``ticks``)."""
    controller.sync()
    for _ in range(ticks):
        controller.tick_due()
        if observe is not None:
            observe()
        if NAME not in controller.active:
            return
        cluster.clock.sleep(INTERVAL_S)
    raise AssertionError(f"the rollout was still active after {ticks} ticks")
