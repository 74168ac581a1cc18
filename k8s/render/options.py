"""What a rendering may be tuned with, besides the rollout spec itself.

Why a frozen dataclass checked at construction: these values come from command-line flags, and a
bad one (zero replicas, a utilization of 150%) must be refused with the flag's name before any
manifest is produced, not found later by the API server or, worse, by the autoscaler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mlcanary.k8s.render.errors import RenderError
from mlcanary.serving.image.names import repository_problem

__all__ = ["AutoscaleMetric", "RenderOptions"]

AutoscaleMetric = Literal["cpu", "requests"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_REDIS_URL = re.compile(r"rediss?://\S+")


@dataclass(frozen=True)
class RenderOptions:
    # Where each version's image was pushed (`mlcanary build --push`): REPO:VERSION[-gpu].
    # Unset: the names `mlcanary build` tags locally, mlcanary/MODEL:VERSION[-gpu].
    image_repo: str | None = None
    # Gateway API only: the Gateway the HTTPRoute attaches to (its namespace: the rollout's).
    gateway: str = "mlcanary"
    gateway_namespace: str | None = None
    # Pods per version: the autoscaler's range. (Under the replicas router there is no
    # autoscaler: spec.router.replicas is the model's total, which the controller splits.)
    replicas: int = 2
    max_replicas: int = 10
    autoscale_metric: AutoscaleMetric = "cpu"
    target_cpu_percent: int = 70
    # Per pod, through a custom metrics adapter (see docs/kubernetes.md).
    target_requests_per_second: int = 200
    gpus_per_pod: int = 1
    # Unset: the stable version's image, which holds the mlcanary CLI like every served image.
    controller_image: str | None = None
    # The feedback ledger the pods share: None renders a Redis for the model; a redis:// URL
    # names one of the user's own.
    ledger_url: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.replicas <= self.max_replicas:
            problems.append(
                f"replicas: {self.replicas} must be at least 1 and at most max_replicas"
                f" ({self.max_replicas})"
            )
        if not 1 <= self.target_cpu_percent <= 100:
            problems.append(f"target_cpu_percent: {self.target_cpu_percent} is outside 1..100")
        if self.target_requests_per_second < 1:
            problems.append(
                f"target_requests_per_second: {self.target_requests_per_second} is below 1"
            )
        if self.gpus_per_pod < 1:
            problems.append(f"gpus_per_pod: {self.gpus_per_pod} is below 1")
        for field, value in (
            ("gateway", self.gateway),
            ("gateway_namespace", self.gateway_namespace),
        ):
            if value is not None and not _DNS_LABEL.fullmatch(value):
                problems.append(f"{field}: {value!r} is not a valid Kubernetes name")
        if self.image_repo is not None and (problem := repository_problem(self.image_repo)):
            problems.append(f"image_repo: {problem}")
        if self.controller_image is not None and not self.controller_image.strip():
            problems.append("controller_image: is empty")
        if self.ledger_url is not None and not _REDIS_URL.fullmatch(self.ledger_url):
            problems.append(f"ledger_url: {self.ledger_url!r} is not a redis:// URL")
        if problems:
            raise RenderError(problems)
