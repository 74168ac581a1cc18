"""What serves one model version: its Deployment, Service and HorizontalPodAutoscaler.

Why the pod looks the way it does:

* Weight shifts and scale-downs must drop no request. A pod is only sent traffic once /readyz
  answers (the model is loaded); on termination ``preStop`` sleeps first, so that endpoints,
  proxies and gateways stop routing to the pod before it stops listening, and the grace period
  leaves the server time to finish what it holds after that. A rolling update never takes a
  ready pod away before its replacement is ready (maxUnavailable 0, maxSurge 1).
* Each version runs its own image (`images`), the one `mlcanary build` made for it, with the
  image's entrypoint: the image holds that version's model store (``BENTOML_HOME``) and serves
  ``MLCANARY_MODEL``. The pod sets ``MLCANARY_MODEL`` anyway, so that an image holding another
  version never becomes ready (the model is not in its store) instead of serving under this
  version's name, and ``BENTOML_PORT``, so that the server listens where the probes, the
  Service and the ServiceMonitor look.
* Least privilege (`security`), and no API token: the server never talks to the API server.
  The root filesystem is read-only; the server writes only under ``/tmp`` (the Prometheus
  multiprocess files of its workers, and the image's ``MLCANARY_HOME=/tmp/mlcanary``), an
  emptyDir. The model store in the image is only read.
* The feedback HMAC key and the labeler key (the bearer credential of /feedback) come from a
  Secret through the kubelet, so every replica of every version verifies the same tokens and
  admits the same labeling pipeline, while the controller never needs access to Secrets.
* Every pod claims feedback tokens in one shared Redis ledger (``MLCANARY_LEDGER_URL``, see
  `ledger`), so a token replayed at another pod or another version is still counted once.
* GPU pods ask the device plugin for whole GPUs, run with the NVIDIA container runtime class,
  tolerate the usual ``nvidia.com/gpu`` taint and land only on nodes that advertise a GPU.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import naming
from mlcanary.k8s.render.ledger import ledger_url
from mlcanary.k8s.render.mirror import mirror_env, mirror_mount, mirror_volume
from mlcanary.k8s.render.options import RenderOptions
from mlcanary.k8s.render.security import SCRATCH, container_security_context, pod_security_context
from mlcanary.serving.image.names import version_image
from mlcanary.settings import env_name

__all__ = [
    "PRESTOP_SLEEP_S",
    "TERMINATION_GRACE_S",
    "autoscaler",
    "deployment",
    "labels",
    "service",
]

PRESTOP_SLEEP_S = 5
TERMINATION_GRACE_S = 30


def labels(model: str, version: str | None = None) -> dict[str, str]:
    """Recommended labels plus the selector labels of `naming`."""
    return {
        "app.kubernetes.io/name": model,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": naming.PART_OF,
        "app.kubernetes.io/managed-by": "mlcanary",
        **naming.selector(model, version),
    }


def _metadata(name: str, namespace: str, model: str, version: str | None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(model, version)}


def _env(model: str, version: str, gpu: bool, ledger: str) -> list[dict[str, Any]]:
    return [
        {"name": env_name("model"), "value": f"{model}:{version}"},
        {"name": env_name("ledger_url"), "value": ledger},
        {"name": "BENTOML_PORT", "value": str(naming.SERVING_PORT)},
        # A pod that holds a GPU fails rather than serve on the CPU unnoticed ("auto" would).
        {"name": env_name("device"), "value": "cuda" if gpu else "cpu"},
        _from_secret(env_name("feedback_secret"), model, naming.FEEDBACK_SECRET_KEY),
        _from_secret(env_name("labeler_key"), model, naming.LABELER_SECRET_KEY),
    ]


def _from_secret(variable: str, model: str, key: str) -> dict[str, Any]:
    reference = {"name": naming.feedback_secret(model), "key": key}
    return {"name": variable, "valueFrom": {"secretKeyRef": reference}}


def _resources(gpu: bool, options: RenderOptions) -> dict[str, Any]:
    if gpu:
        gpus = str(options.gpus_per_pod)
        return {
            "requests": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": gpus},
            "limits": {"memory": "4Gi", "nvidia.com/gpu": gpus},
        }
    # No CPU limit: throttling a latency-bound server hurts p95 more than it protects
    # neighbours; the request is what the scheduler and the CPU autoscaler go by.
    return {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def _probe(path: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": naming.SERVING_PORT_NAME},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(
    model: str, version: str, gpu: bool, options: RenderOptions, namespace: str, *, shadow: bool
) -> dict[str, Any]:
    ledger = options.ledger_url or ledger_url(model, namespace)
    mounts = [{"name": "tmp", "mountPath": SCRATCH}]
    return {
        "name": "server",
        "image": version_image(model, version, gpu=gpu, repository=options.image_repo),
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {
                "name": naming.SERVING_PORT_NAME,
                "containerPort": naming.SERVING_PORT,
                "protocol": "TCP",
            }
        ],
        "env": _env(model, version, gpu, ledger) + ([mirror_env()] if shadow else []),
        "resources": _resources(gpu, options),
        # Loading a torch model (and CUDA) can take a while: the startup probe holds the others
        # back for up to 5 minutes instead of letting liveness kill a pod that is still loading.
        "startupProbe": _probe("/livez", 5, 60),
        "readinessProbe": _probe("/readyz", 5, 2),
        "livenessProbe": _probe("/livez", 10, 3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}},
        "securityContext": container_security_context(),
        "volumeMounts": mounts + ([mirror_mount()] if shadow else []),
    }


def _gpu_placement() -> dict[str, Any]:
    return {
        "runtimeClassName": "nvidia",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
    }


def deployment(
    model: str,
    version: str,
    *,
    namespace: str,
    gpu: bool,
    options: RenderOptions,
    replicas: int | None,
    shadow: bool = False,
) -> dict[str, Any]:
    """``replicas`` None leaves the count to the autoscaler (a fixed count in the manifest would
    reset it at every apply). ``shadow``: the pods read the model's mirror ConfigMap
    (`mirror`), for a rollout with a shadow step."""
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": pod_security_context(),
        "containers": [_container(model, version, gpu, options, namespace, shadow=shadow)],
        "volumes": [{"name": "tmp", "emptyDir": {}}] + ([mirror_volume(model)] if shadow else []),
        **(_gpu_placement() if gpu else {}),
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": naming.selector(model, version)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {"metadata": {"labels": labels(model, version)}, "spec": pod_spec},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(naming.workload(model, version), namespace, model, version),
        "spec": spec,
    }


def service(model: str, version: str | None, *, namespace: str) -> dict[str, Any]:
    """One version's Service, or with ``version`` None the model's Service over all versions."""
    name = naming.route(model) if version is None else naming.workload(model, version)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, model, version),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.selector(model, version),
            "ports": [
                {
                    "name": naming.SERVING_PORT_NAME,
                    "port": naming.SERVING_PORT,
                    "targetPort": naming.SERVING_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def _metric(options: RenderOptions) -> dict[str, Any]:
    if options.autoscale_metric == "cpu":
        return {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": options.target_cpu_percent},
            },
        }
    # Served by a custom metrics adapter from rate(mlcanary_http_requests_total[...]).
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": "mlcanary_http_requests_per_second"},
            "target": {
                "type": "AverageValue",
                "averageValue": str(options.target_requests_per_second),
            },
        },
    }


def autoscaler(
    model: str, version: str, *, namespace: str, options: RenderOptions
) -> dict[str, Any]:
    name = naming.workload(model, version)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, namespace, model, version),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": options.replicas,
            "maxReplicas": options.max_replicas,
            "metrics": [_metric(options)],
            # Scale down slowly: a canary step is judged on steady traffic, and a flapping
            # replica count would show up as latency noise in the analysis.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }
