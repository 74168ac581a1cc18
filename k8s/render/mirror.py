"""The shadow step's objects: the model's mirror ConfigMap, and its mount in the servers' pods.

Why a ConfigMap mounted as a file: the servers already read their model's mirror file
(`mlcanary.serving.mirror_file`), and the kubelet replaces a mounted ConfigMap's files
atomically when the controller changes it (`mlcanary.k8s.mirror`), so every replica of every
version learns what to copy without any connection to the API server (the pods keep no API
token). Every version's pods mount it, not only the stable's: a canary promoted today is the
stable that copies in the next rollout. A kubelet applies a change within its sync period plus
its ConfigMap cache's TTL (about a minute by default), which is why a shadow step's analysis
interval and maxDuration should leave room for it.

Rendered only for a spec whose steps start with ``shadow``; ``kubectl apply`` of the rendering
again resets the setting to ``{}`` until the controller's next tick writes it back.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import naming
from mlcanary.rollout.spec import SHADOW, RolloutSpec
from mlcanary.serving.mirror_file import mirror_file_name, render_setting
from mlcanary.settings import env_name

__all__ = [
    "MIRROR_DIR",
    "MIRROR_VOLUME",
    "config_map",
    "has_shadow",
    "mirror_env",
    "mirror_mount",
    "mirror_volume",
]

MIRROR_DIR = "/etc/mlcanary/shadow"
MIRROR_VOLUME = "mirror"


def has_shadow(spec: RolloutSpec) -> bool:
    return SHADOW in spec.steps


def config_map(model: str, namespace: str) -> dict[str, Any]:
    """The ConfigMap as rendered: no copies until the controller says so."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": naming.mirror_config_map(model),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": model,
                "app.kubernetes.io/component": "shadow-mirror",
                "app.kubernetes.io/part-of": naming.PART_OF,
                "app.kubernetes.io/managed-by": "mlcanary",
                naming.MODEL_LABEL: model,
            },
        },
        "data": {mirror_file_name(model): render_setting(None).decode()},
    }


def mirror_volume(model: str) -> dict[str, Any]:
    return {"name": MIRROR_VOLUME, "configMap": {"name": naming.mirror_config_map(model)}}


def mirror_mount() -> dict[str, Any]:
    return {"name": MIRROR_VOLUME, "mountPath": MIRROR_DIR, "readOnly": True}


def mirror_env() -> dict[str, Any]:
    return {"name": env_name("shadow_dir"), "value": MIRROR_DIR}
