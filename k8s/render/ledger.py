"""The shared feedback ledger of a model's pods: a Redis Deployment and Service, unless the user
names a Redis of their own.

Why: a replayed feedback token must be counted once across every replica of every version, and
each pod's own SQLite file cannot see another pod's claims. Every version's pods point
``MLCANARY_LEDGER_URL`` at this Redis (`mlcanary.serving.ledger_redis`). It keeps nothing on disk
(no snapshots, no append-only file): a claim only has to outlive its token (24 h by default),
and a Redis restarted empty only forgets claims, so a token replayed across that restart could be
counted again; ``noeviction`` makes a full Redis refuse new claims (feedback answered 503) rather
than drop old ones. The pod runs hardened like every other (`security`): the official image
starts Redis as whatever non-root user it is given, and Redis writes nothing but its emptyDir.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import naming
from mlcanary.k8s.render.security import container_security_context, pod_security_context

__all__ = ["LEDGER_IMAGE", "LEDGER_PORT", "ledger_objects", "ledger_url"]

LEDGER_IMAGE = "redis:7.2-alpine"
LEDGER_PORT = 6379


def _name(model: str) -> str:
    return f"{naming.route(model)}-ledger"


def ledger_url(model: str, namespace: str) -> str:
    return f"redis://{_name(model)}.{namespace}.svc:{LEDGER_PORT}/0"


def _labels(model: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": _name(model),
        "app.kubernetes.io/component": "feedback-ledger",
        "app.kubernetes.io/part-of": naming.PART_OF,
        "app.kubernetes.io/managed-by": "mlcanary",
    }


def ledger_objects(model: str, namespace: str) -> list[dict[str, Any]]:
    name, labels = _name(model), _labels(model)
    selector = {"app.kubernetes.io/name": name}
    probe = {"tcpSocket": {"port": "redis"}, "periodSeconds": 5, "timeoutSeconds": 2}
    container = {
        "name": "redis",
        "image": LEDGER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "200mb",
            "--maxmemory-policy",
            "noeviction",
        ],
        "ports": [{"name": "redis", "containerPort": LEDGER_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 3},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            # One Redis: the ledger's point is one place that sees every claim.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "redis", "port": LEDGER_PORT, "targetPort": "redis", "protocol": "TCP"}
            ],
        },
    }
    return [deployment, service]
