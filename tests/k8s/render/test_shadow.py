"""A spec with a shadow step renders the model's mirror ConfigMap, mounts it into every
version's pods where the servers read it, and lets the controller write it; a spec without one
renders none of that. Every object validates against the real schemas."""

from __future__ import annotations

from typing import Any

import pytest

from mlcanary.k8s.render import render
from mlcanary.k8s.render.mirror import MIRROR_DIR
from mlcanary.k8s.validation import validate_objects
from mlcanary.rollout.spec import SHADOW, ModelRollout
from mlcanary.settings import ServingSettings
from tests.k8s.render.conftest import ROUTERS, by_kind, example


def shadowed(router: str) -> ModelRollout:
    document = example(router).model_dump(mode="json", by_alias=True, exclude_none=True)
    document["spec"]["steps"] = [SHADOW, 10, 100]
    document["spec"]["analysis"]["shadow"] = {"fraction": 0.5, "minAgreement": 0.95}
    return ModelRollout.model_validate(document)


def _configmap_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    [role] = by_kind(objects, "Role")
    return [rule for rule in role["rules"] if "configmaps" in rule["resources"]]


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_a_shadow_step_mounts_the_mirror_configmap_into_every_version(
    router: str, gpu: bool
) -> None:
    objects = render(shadowed(router), gpu=gpu, namespace="prod")
    assert validate_objects(objects) == []
    [config_map] = by_kind(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == "digits-mirror"
    assert config_map["data"] == {"digits.json": "{}"}
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    for name in ("digits-v1", "digits-v2"):
        deployment = deployments[name]
        pod = deployment["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if "configMap" in v]
        assert volume["configMap"] == {"name": "digits-mirror"}
        [container] = pod["containers"]
        [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert (mount["mountPath"], mount["readOnly"]) == (MIRROR_DIR, True)
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        settings = ServingSettings.from_env({**env, "MLCANARY_FEEDBACK_SECRET": "x" * 32})
        assert str(settings.shadow_dir) == MIRROR_DIR
    assert _configmap_rules(objects) == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}
    ]


@pytest.mark.parametrize("router", ROUTERS)
def test_without_a_shadow_step_nothing_of_the_mirror_is_rendered(router: str) -> None:
    objects = render(example(router), gpu=False, namespace="prod")
    assert by_kind(objects, "ConfigMap") == []
    assert _configmap_rules(objects) == []
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert all("configMap" not in v for v in pod["volumes"])
        names = {e["name"] for c in pod["containers"] for e in c.get("env", [])}
        assert "MLCANARY_SHADOW_DIR" not in names
