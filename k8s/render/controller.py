"""The in-cluster controller's own Deployment, and the RBAC objects it runs under.

Why two replicas: one leads and acts, the other stands by (`mlcanary.k8s.leading`: they elect
the leader on a Lease, so two never decide on the same rollouts), and takes over when the
leader's pod or node goes, within the lease duration and two retries, instead of after a
reschedule and an image pull. Each pod names itself in the Lease by its pod name
(``POD_NAME``, from the downward API). The rolling update starts a new pod and waits until it
is ready (it has read the Lease) before stopping an old one, which hands the lease back as it
stops; the pods prefer different nodes. The controller keeps nothing in its pod (status lives
in the ModelRollout objects), so whichever replica leads resumes every rollout where it was.

Its image is the one ``mlcanary build --controller`` makes: the package with the Kubernetes
client and none of the serving stack (no torch, no BentoML), named by the rule in
``mlcanary.serving.image.names``. It runs ``mlcanary controller``: the command line imports a
command's dependencies only when that command runs, so the controller pays for nothing else. Its
probes ask
`mlcanary.k8s.controller_health`: liveness restarts a loop that stopped moving, readiness says
it has listed the rollouts.

The Secret keys the rollout's notifications name (``urlFrom.secretKeyRef``) reach the controller
as environment variables (`notification_env`), through the kubelet: the controller's Role
grants nothing on Secrets. Each is optional, so a Secret not yet created keeps no controller
from starting: the target it feeds drops its notifications, counted and logged with the reason.
The Deployment is one per namespace, so it carries the Secrets of the rollout it was rendered
with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlcanary.k8s import naming, rbac
from mlcanary.k8s.controller_health import HEALTH_PORT
from mlcanary.k8s.render.security import (
    SCRATCH,
    container_security_context,
    pod_security_context,
    scratch_env,
)
from mlcanary.rollout.spec import ModelRollout

__all__ = ["controller_deployment", "controller_objects", "notification_env"]

_REPLICAS = 2  # a leader and a standby
_HEALTH_PORT_NAME = "health"


def _probe(path: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": _HEALTH_PORT_NAME},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def notification_env(rollout: ModelRollout) -> list[dict[str, Any]]:
    """The variables that hand the controller the Secret keys of the rollout's notifications,
    under the names it reads them by (`SecretKeyRef.env_name`)."""
    refs = {
        target.url_from.secret_key_ref
        for target in rollout.spec.notifications
        if target.url_from is not None and target.url_from.secret_key_ref is not None
    }
    return [
        {
            "name": ref.env_name,
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key, "optional": True}},
        }
        for ref in sorted(refs, key=lambda ref: ref.env_name)
    ]


def controller_deployment(
    namespace: str, image: str, env: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": naming.CONTROLLER}
    labels = {**selector, "app.kubernetes.io/part-of": naming.PART_OF}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": naming.CONTROLLER, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": _REPLICAS,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": naming.CONTROLLER,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": selector},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "controller",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [
                                "mlcanary",
                                "controller",
                                "--namespace",
                                namespace,
                                "--health-host",
                                "0.0.0.0",  # noqa: S104 (in the pod: for the kubelet's probes)
                                "--health-port",
                                str(HEALTH_PORT),
                            ],
                            "ports": [
                                {
                                    "name": _HEALTH_PORT_NAME,
                                    "containerPort": HEALTH_PORT,
                                    "protocol": "TCP",
                                }
                            ],
                            "env": [
                                *scratch_env(),
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                *env,
                            ],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "readinessProbe": _probe("/readyz", 5, 2),
                            "livenessProbe": _probe("/healthz", 10, 3),
                            "securityContext": container_security_context(),
                            "volumeMounts": [{"name": "tmp", "mountPath": SCRATCH}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def controller_objects(
    namespace: str,
    image: str,
    router: str,
    env: Sequence[dict[str, Any]] = (),
    *,
    shadow: bool = False,
) -> list[dict[str, Any]]:
    """``shadow``: the Role also lets the controller write the mirror ConfigMap."""
    return [
        rbac.service_account(namespace),
        rbac.role(namespace, router, shadow=shadow),
        rbac.role_binding(namespace),
        controller_deployment(namespace, image, env),
    ]
