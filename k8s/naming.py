"""The names and labels that rendered manifests and the in-cluster controller agree on.

Why one module: the controller finds the objects that `mlcanary k8s render` created by name
(it patches the route's weights, scales and watches the Deployments), so both sides compute the
names here instead of each spelling them out.

Objects are named by model and *version*, never by role: when a canary is promoted it becomes
the stable version without any object being renamed or recreated.

* ``workload(model, version)`` = ``{model}-{version}``: the Deployment, Service and
  HorizontalPodAutoscaler of one version;
* ``route(model)`` = ``{model}``: the HTTPRoute or VirtualService, the Service clients call, the
  ServiceMonitor and PrometheusRule;
* ``feedback_secret(model)`` = ``{model}-feedback``: the Secret with the feedback HMAC key (under
  the key ``secret``) and the labeler key that /feedback asks for (under ``labeler``);
* ``mirror_config_map(model)`` = ``{model}-mirror``: the shadow step's mirror setting;
* ``CONTROLLER``: the controller's Deployment, ServiceAccount, Role and RoleBinding.

Model and version names (`mlcanary.names`) may hold ``.`` and ``_``, which Service names may
not: those become ``-``, and a name that had to change or is too long gets a short hash of the
original appended, so that two versions never map to one object.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "CONTROLLER",
    "FEEDBACK_SECRET_KEY",
    "LABELER_SECRET_KEY",
    "MODEL_LABEL",
    "PART_OF",
    "SERVING_PORT",
    "SERVING_PORT_NAME",
    "VERSION_LABEL",
    "feedback_secret",
    "mirror_config_map",
    "route",
    "selector",
    "workload",
]

MODEL_LABEL = "mlcanary.dev/model"
VERSION_LABEL = "mlcanary.dev/version"
PART_OF = "mlcanary"
CONTROLLER = "mlcanary-controller"
FEEDBACK_SECRET_KEY = "secret"  # noqa: S105 (the key's name inside the Secret, not a secret)
LABELER_SECRET_KEY = "labeler"  # noqa: S105 (a key name)
SERVING_PORT = 3000
SERVING_PORT_NAME = "http"

# A Service name is a DNS-1035 label: what the strictest of our objects accepts.
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_MAX = 63
_SUFFIX = 8


def _object_name(*parts: str) -> str:
    original = "-".join(parts)
    if len(original) <= _MAX and _DNS_LABEL.fullmatch(original):
        return original
    digest = hashlib.sha256(original.encode()).hexdigest()[:_SUFFIX]
    cleaned = re.sub(r"[^a-z0-9-]", "-", original)
    if not cleaned[0].isalpha():
        cleaned = f"m-{cleaned}"
    cleaned = cleaned[: _MAX - _SUFFIX - 1].rstrip("-")
    return f"{cleaned}-{digest}"


def workload(model: str, version: str) -> str:
    """The Deployment, Service and HorizontalPodAutoscaler serving one version."""
    return _object_name(model, version)


def route(model: str) -> str:
    """The routing object (HTTPRoute or VirtualService), the Service clients call, and the
    monitoring objects of a model."""
    return _object_name(model)


def feedback_secret(model: str) -> str:
    return _object_name(model, "feedback")


def mirror_config_map(model: str) -> str:
    """The ConfigMap that tells stable's servers where to copy requests during a shadow step."""
    return _object_name(model, "mirror")


def selector(model: str, version: str | None = None) -> dict[str, str]:
    """The labels that select a model's pods, or one version's."""
    labels = {MODEL_LABEL: model}
    if version is not None:
        labels[VERSION_LABEL] = version
    return labels
