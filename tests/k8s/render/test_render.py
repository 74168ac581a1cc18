"""Rendered manifests: valid for every router and CPU/GPU, and with the properties that make
weight shifts safe and pods least-privileged."""

from __future__ import annotations

from typing import Any

import pytest

from mlcanary.k8s import naming
from mlcanary.k8s.render import InvalidManifestError, RenderError, RenderOptions, render
from mlcanary.k8s.render.workloads import PRESTOP_SLEEP_S, TERMINATION_GRACE_S
from mlcanary.k8s.routers.replicas import DEFAULT_TOTAL_REPLICAS
from mlcanary.k8s.validation import validate_objects
from mlcanary.rollout.spec import load_spec

from .conftest import EXAMPLES, by_kind, example

Rendered = tuple[str, bool, list[dict[str, Any]]]


def _serving(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d for d in by_kind(objects, "Deployment") if naming.VERSION_LABEL in d["metadata"]["labels"]
    ]


def _named(obj: dict[str, Any], name: str) -> bool:
    return bool(obj["metadata"]["name"] == name)


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_every_object_validates(rendered: Rendered):
    _, _, objects = rendered
    assert validate_objects(objects) == []


def test_the_objects_each_router_needs(rendered: Rendered):
    router, _, objects = rendered
    kinds = [obj["kind"] for obj in objects]
    assert kinds[0] == "CustomResourceDefinition"  # first, so that the ModelRollout applies
    assert kinds[-1] == "ModelRollout"
    assert kinds.count("Deployment") == 4  # stable, canary, controller, feedback ledger
    assert {"ServiceAccount", "Role", "RoleBinding", "ServiceMonitor", "PrometheusRule"} <= set(
        kinds
    )
    services = {s["metadata"]["name"] for s in by_kind(objects, "Service")}
    assert {"digits-v1", "digits-v2", "digits-ledger"} <= services
    assert ("digits" in services) == (router != "gateway-api")
    assert len(by_kind(objects, "HTTPRoute")) == (router == "gateway-api")
    assert len(by_kind(objects, "VirtualService")) == (router == "istio")
    assert len(by_kind(objects, "HorizontalPodAutoscaler")) == (0 if router == "replicas" else 2)


def test_gpu_deployments_ask_for_a_gpu_and_land_on_gpu_nodes(rendered: Rendered):
    _, gpu, objects = rendered
    for deployment in _serving(objects):
        pod = _pod(deployment)
        (container,) = pod["containers"]
        if gpu:
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert pod["runtimeClassName"] == "nvidia"
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
                "tolerations"
            ]
            assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        else:
            assert "nvidia.com/gpu" not in container["resources"]["limits"]
            assert not {"runtimeClassName", "tolerations", "nodeSelector"} & pod.keys()
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MLCANARY_DEVICE"] == ("cuda" if gpu else "cpu")


def test_pods_are_least_privileged(rendered: Rendered):
    _, _, objects = rendered
    for deployment in by_kind(objects, "Deployment"):
        pod = _pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the user the images run as
        assert pod["securityContext"]["runAsGroup"] != 0
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            mounted = {m["name"] for m in container["volumeMounts"]}
            assert mounted <= {
                v["name"] for v in pod["volumes"] if v.keys() == {"name", "emptyDir"}
            }
    for deployment in _serving(objects):
        assert _pod(deployment)["automountServiceAccountToken"] is False


def test_serving_pods_drain_before_they_stop(rendered: Rendered):
    _, _, objects = rendered
    for deployment in _serving(objects):
        pod = _pod(deployment)
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": PRESTOP_SLEEP_S}}
        assert pod["terminationGracePeriodSeconds"] == TERMINATION_GRACE_S > PRESTOP_SLEEP_S
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }


def test_serving_pods_run_the_version_and_take_the_feedback_key_from_a_secret(rendered: Rendered):
    _, gpu, objects = rendered
    assert not by_kind(objects, "Secret")
    for deployment in _serving(objects):
        version = deployment["metadata"]["labels"][naming.VERSION_LABEL]
        pod = _pod(deployment)
        (container,) = pod["containers"]
        # The version's own image, with the entrypoint it was built with.
        assert container["image"] == f"mlcanary/digits:{version}{'-gpu' if gpu else ''}"
        assert not {"command", "args"} & container.keys()
        assert deployment["metadata"]["name"] == naming.workload("digits", version)
        env = {e["name"]: e for e in container["env"]}
        assert env["MLCANARY_MODEL"]["value"] == f"digits:{version}"
        assert env["BENTOML_PORT"]["value"] == str(container["ports"][0]["containerPort"])
        # Nothing that would point the server away from what the image holds or writes to.
        assert not {"BENTOML_HOME", "MLCANARY_HOME", "MLCANARY_LEDGER"} & env.keys()
        # Everything the server writes goes to /tmp (the image's MLCANARY_HOME is under it).
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
        assert env["MLCANARY_FEEDBACK_SECRET"]["valueFrom"]["secretKeyRef"] == {
            "name": "digits-feedback",
            "key": "secret",
        }
        assert env["MLCANARY_LABELER_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "digits-feedback",
            "key": "labeler",
        }
        assert deployment["spec"]["selector"]["matchLabels"] == naming.selector("digits", version)
        assert env["MLCANARY_LEDGER_URL"]["value"] == "redis://digits-ledger.default.svc:6379/0"


def test_every_version_shares_one_ledger_that_keeps_claims_rather_than_evict_them():
    objects = render(example(), gpu=False, namespace="ml")
    (ledger,) = [d for d in by_kind(objects, "Deployment") if _named(d, "digits-ledger")]
    assert ledger["spec"]["replicas"] == 1
    (redis,) = _pod(ledger)["containers"]
    args = redis["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (service,) = [s for s in by_kind(objects, "Service") if _named(s, "digits-ledger")]
    assert service["spec"]["selector"] == ledger["spec"]["selector"]["matchLabels"]
    urls = {
        next(e["value"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
             if e["name"] == "MLCANARY_LEDGER_URL")
        for d in _serving(objects)
    }  # fmt: skip
    assert urls == {"redis://digits-ledger.ml.svc:6379/0"}


def test_a_ledger_of_the_users_own_replaces_the_rendered_one():
    own = "redis://shared-redis.infra.svc:6379/3"
    objects = render(example(), gpu=False, options=RenderOptions(ledger_url=own))
    assert "digits-ledger" not in {o["metadata"]["name"] for o in objects}
    for deployment in _serving(objects):
        env = {e["name"]: e.get("value") for e in _pod(deployment)["containers"][0]["env"]}
        assert env["MLCANARY_LEDGER_URL"] == own
    with pytest.raises(RenderError, match=r"ledger_url: 'http://x' is not a redis:// URL"):
        RenderOptions(ledger_url="http://x")


def test_routes_start_with_all_traffic_on_stable():
    gateway = render(
        example(router="gateway-api"),
        gpu=False,
        options=RenderOptions(gateway="edge", gateway_namespace="infra"),
    )
    (route,) = by_kind(gateway, "HTTPRoute")
    assert route["metadata"]["name"] == naming.route("digits")
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "infra",
        }
    ]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("digits-v1", 100), ("digits-v2", 0)]

    (service,) = by_kind(render(example(router="istio"), gpu=False), "VirtualService")
    destinations = service["spec"]["http"][0]["route"]
    assert [(d["destination"]["host"], d["weight"]) for d in destinations] == [
        ("digits-v1", 100),
        ("digits-v2", 0),
    ]


def test_the_replica_router_carries_the_split_in_replica_counts():
    spec = example(router="replicas")
    objects = render(spec, gpu=False)
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in _serving(objects)}
    assert replicas == {"digits-v1": DEFAULT_TOTAL_REPLICAS, "digits-v2": 0}
    router = spec.spec.router.model_copy(update={"replicas": 20})
    twenty = spec.model_copy(update={"spec": spec.spec.model_copy(update={"router": router})})
    assert [d["spec"]["replicas"] for d in _serving(render(twenty, gpu=False))] == [
        20,
        0,
    ]
    (model_service,) = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "digits"]
    assert model_service["spec"]["selector"] == {naming.MODEL_LABEL: "digits"}  # both versions


def test_autoscaled_deployments_leave_the_count_to_the_autoscaler():
    objects = render(
        example(),
        gpu=False,
        options=RenderOptions(autoscale_metric="requests", replicas=3),
    )
    assert all("replicas" not in d["spec"] for d in _serving(objects))
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] == hpa["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] == 3
        assert hpa["spec"]["metrics"][0]["type"] == "Pods"


def test_the_service_monitor_scrapes_version_services_only(rendered: Rendered):
    _, _, objects = rendered
    (monitor,) = by_kind(objects, "ServiceMonitor")
    expressions = monitor["spec"]["selector"]["matchExpressions"]
    for service in by_kind(objects, "Service"):
        selected = naming.VERSION_LABEL in service["metadata"]["labels"]
        assert selected == (service["metadata"]["name"] not in ("digits", "digits-ledger"))
    assert expressions == [{"key": naming.VERSION_LABEL, "operator": "Exists"}]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_namespace_comes_from_the_flag_then_the_spec():
    spec = example()
    assert {o["metadata"].get("namespace") for o in render(spec, gpu=False, namespace="ml")} == {
        None,
        "ml",
    }
    placed = spec.model_copy(
        update={"metadata": spec.metadata.model_copy(update={"namespace": "team"})}
    )
    assert {o["metadata"].get("namespace") for o in render(placed, gpu=False)} == {
        None,
        "team",
    }


def test_a_local_router_or_a_non_label_version_is_refused_naming_the_field():
    with pytest.raises(RenderError) as caught:
        render(load_spec((EXAMPLES / "better-canary.yaml").read_text()), gpu=False)
    assert caught.value.problems[0].startswith("spec.router.type: 'local'")
    spec = example()
    odd = spec.model_copy(
        update={
            "spec": spec.spec.model_copy(
                update={"canary": spec.spec.canary.model_copy(update={"version": "v2-"})}
            )
        }
    )
    with pytest.raises(
        RenderError, match=r"spec\.canary\.version: 'v2-' must end with a letter or digit"
    ):
        render(odd, gpu=False)


def test_bad_options_are_refused_naming_the_option():
    with pytest.raises(RenderError, match=r"replicas: 0 must be at least 1"):
        RenderOptions(replicas=0)
    with pytest.raises(RenderError, match=r"target_cpu_percent: 150 is outside 1..100"):
        RenderOptions(target_cpu_percent=150)


def test_an_invalid_rendered_object_fails_loudly():
    options = RenderOptions(target_cpu_percent=50.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidManifestError) as caught:
        render(example(), gpu=False, options=options)
    where = "HorizontalPodAutoscaler/digits-v1: spec.metrics[0].resource.target.averageUtilization"
    assert f"{where}: 50.5 is not of type 'integer', 'null'" in caught.value.problems


def test_versions_run_the_images_pushed_under_the_image_repository():
    options = RenderOptions(image_repo="registry.example/ml/digits")
    objects = render(example(), gpu=True, options=options)
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in by_kind(objects, "Deployment")}  # fmt: skip
    del images["digits-ledger"]
    assert images == {
        naming.CONTROLLER: "registry.example/ml/digits:v1-gpu",  # the stable version's
        "digits-v1": "registry.example/ml/digits:v1-gpu",
        "digits-v2": "registry.example/ml/digits:v2-gpu",
    }
    chosen = render(example(), gpu=False, options=RenderOptions(controller_image="ops/ctl:1"))
    (controller,) = [d for d in by_kind(chosen, "Deployment") if _named(d, naming.CONTROLLER)]
    assert _pod(controller)["containers"][0]["image"] == "ops/ctl:1"


def test_the_controller_is_probed_on_its_health_endpoint(rendered: Rendered):
    _, _, objects = rendered
    (controller,) = [d for d in by_kind(objects, "Deployment") if _named(d, naming.CONTROLLER)]
    (container,) = _pod(controller)["containers"]
    command = container["command"]
    assert command[:2] == ["mlcanary", "controller"]
    # Listening where the kubelet reaches it, on the port the probes name.
    assert command[command.index("--health-host") + 1] == "0.0.0.0"
    (port,) = container["ports"]
    assert command[command.index("--health-port") + 1] == str(port["containerPort"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}


def test_the_controller_runs_a_leader_and_a_standby_that_replace_each_other_safely(
    rendered: Rendered,
):
    _, _, objects = rendered
    (controller,) = [d for d in by_kind(objects, "Deployment") if _named(d, naming.CONTROLLER)]
    assert controller["spec"]["replicas"] == 2
    # A new pod is ready (it read the Lease) before an old one stops and hands it back.
    assert controller["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = _pod(controller)
    (container,) = pod["containers"]
    (identity,) = [e for e in container["env"] if e["name"] == "POD_NAME"]
    assert identity["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    (spread,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert spread["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    labels = controller["spec"]["template"]["metadata"]["labels"]
    assert spread["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_an_image_repository_with_a_tag_or_bad_characters_is_refused():
    with pytest.raises(RenderError, match=r"image_repo: 'ml/digits:v2' has a tag"):
        RenderOptions(image_repo="ml/digits:v2")
    with pytest.raises(RenderError, match=r"image_repo: 'ML/Digits' is not an image repository"):
        RenderOptions(image_repo="ML/Digits")


def test_a_model_name_that_cannot_name_an_image_needs_an_image_repository():
    spec = example()
    odd = spec.model_copy(update={"spec": spec.spec.model_copy(update={"model": "dig..its"})})
    with pytest.raises(RenderError, match=r"spec\.model: 'dig\.\.its' cannot name an image"):
        render(odd, gpu=False)
    objects = render(odd, gpu=False, options=RenderOptions(image_repo="reg.example/digits"))
    assert {_pod(d)["containers"][0]["image"] for d in _serving(objects)} == {
        "reg.example/digits:v1",
        "reg.example/digits:v2",
    }
