"""A shadow step in the cluster, against the API double: the controller points the model's
mirror ConfigMap at the canary's Service while the route gives the canary nothing, then empties
it once the step is over, advanced or rolled back; it needs no permission beyond the Role's."""

from __future__ import annotations

from typing import Any

import orjson
from kubernetes.client import V1ConfigMap

from mlcanary.k8s import rbac
from mlcanary.k8s.controller import USER_AGENT
from mlcanary.k8s.render import render
from mlcanary.rollout.spec import SHADOW, ModelRollout
from tests.k8s.cluster import NAMESPACE, Cluster, drive, rollout_document
from tests.rollout.test_shadow import shadow_stream

CONFIG_MAP = "digits-mirror"


def _shadow_document() -> dict[str, Any]:
    document = rollout_document("gateway-api")
    document["spec"]["steps"] = [SHADOW, 10, 100]
    document["spec"]["analysis"]["shadow"] = {"fraction": 1.0, "minAgreement": 0.9}
    return document


def _install(cluster: Cluster) -> None:
    """The rendering as `kubectl apply` would create it, the mirror ConfigMap included."""
    document = _shadow_document()
    cluster.install(document)
    objects = render(ModelRollout.model_validate(document), gpu=False, namespace=NAMESPACE)
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap"]
    body = V1ConfigMap.from_dict(config_map)
    assert body is not None
    cluster.core.create_namespaced_config_map(NAMESPACE, body)


def _mirror(cluster: Cluster) -> dict[str, Any]:
    config_map = cluster.core.read_namespaced_config_map(CONFIG_MAP, NAMESPACE)
    setting: dict[str, Any] = orjson.loads((config_map.data or {})["digits.json"])
    return setting


def _run(cluster: Cluster, disagreeing: float) -> list[tuple[dict[str, int], dict[str, Any]]]:
    """Each tick's route weights and mirror setting."""
    seen: list[tuple[dict[str, int], dict[str, Any]]] = []
    controller = cluster.controller(shadow_stream(60, disagreeing), drain_s=0)
    drive(cluster, controller, lambda: seen.append((cluster.httproute_weights(), _mirror(cluster))))
    controller.close()
    return seen


COPYING = {
    "stable": "v1",
    "canary": "v2",
    "url": f"http://digits-v2.{NAMESPACE}.svc:3000",
    "fraction": 1.0,
}


def test_a_canary_that_agrees_is_copied_to_unseen_then_weighted(cluster: Cluster) -> None:
    _install(cluster)
    seen = _run(cluster, disagreeing=0.0)
    assert cluster.status()["phase"] == "Succeeded"
    shadowing = [setting for weights, setting in seen if weights == {"v1": 100, "v2": 0}]
    assert shadowing
    assert all(setting == COPYING for setting in shadowing)
    weighted = [setting for weights, setting in seen if weights.get("v2", 0) > 0]
    assert weighted
    assert all(setting == {} for setting in weighted)
    used = cluster.double.permissions_used(USER_AGENT)
    granted = {
        (p.api_group, p.resource, verb)
        for p in rbac.permissions_for("gateway-api", shadow=True)
        for verb in p.verbs
    }
    assert used <= granted
    shadow_only = {(p.api_group, p.resource, v) for p in rbac.SHADOW_PERMISSIONS for v in p.verbs}
    assert shadow_only <= used


def test_a_canary_that_disagrees_is_rolled_back_before_any_client_got_it(
    cluster: Cluster,
) -> None:
    _install(cluster)
    seen = _run(cluster, disagreeing=0.6)
    status = cluster.status()
    assert status["phase"] == "RolledBack"
    assert "agreement" in status["message"]
    assert {weights.get("v2", 0) for weights, _ in seen} == {0}
    assert seen[0][1] == COPYING
    assert _mirror(cluster) == {}


def test_a_missing_configmap_holds_the_step_and_says_what_to_apply(cluster: Cluster) -> None:
    cluster.install(_shadow_document())
    controller = cluster.controller(shadow_stream(3, 0.0), drain_s=0)
    controller.sync()
    controller.tick_due()
    controller.close()
    assert cluster.status()["weights"] == {"stable": 100, "canary": 0}
    [(kind, _reason, message)] = [e for e in cluster.events() if e[1] == "TickProblem"]
    assert kind == "Warning"
    assert f"ConfigMap {NAMESPACE}/{CONFIG_MAP} does not exist" in message
