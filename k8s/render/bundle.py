"""Everything a cluster needs for one ModelRollout, rendered and validated.

Why validate here rather than leave it to the API server: a manifest that the cluster would
refuse, or worse accept with a field silently pruned, must never be printed or written. Every
object goes through `mlcanary.k8s.validation` and rendering fails naming each problem.
"""

from __future__ import annotations

from typing import Any, cast

from mlcanary.k8s import crd, rbac
from mlcanary.k8s.render.controller import controller_objects
from mlcanary.k8s.render.errors import InvalidManifestError, RenderError
from mlcanary.k8s.render.monitoring import prometheus_rule, service_monitor
from mlcanary.k8s.render.options import RenderOptions
from mlcanary.k8s.render.routing import routing_objects
from mlcanary.k8s.render.workloads import autoscaler, deployment, service
from mlcanary.k8s.routers.replicas import DEFAULT_TOTAL_REPLICAS
from mlcanary.k8s.validation import validate_objects
from mlcanary.rollout.spec import ModelRollout
from mlcanary.serving.image.names import default_repository, repository_problem, version_image

__all__ = ["CLUSTER_ROUTERS", "render"]

CLUSTER_ROUTERS: tuple[rbac.RouterType, ...] = ("gateway-api", "istio", "replicas")
# A Kubernetes label value: what model and version names end up as.
_LABEL_VALUE_MAX = 63


def _check(rollout: ModelRollout, options: RenderOptions) -> rbac.RouterType:
    spec = rollout.spec
    problems = []
    if spec.router.type not in CLUSTER_ROUTERS:
        problems.append(
            f"spec.router.type: {spec.router.type!r} routes on one machine;"
            f" in a cluster use one of {', '.join(CLUSTER_ROUTERS)}"
        )
    for field, value in (
        ("spec.model", spec.model),
        ("spec.stable.version", spec.stable.version),
        ("spec.canary.version", spec.canary.version),
    ):
        if not value[-1].isalnum():
            problems.append(f"{field}: {value!r} must end with a letter or digit (a label value)")
    if options.image_repo is None and repository_problem(default_repository(spec.model)):
        problems.append(
            f"spec.model: {spec.model!r} cannot name an image repository; give --image-repo"
        )
    if spec.metrics.provider != "prometheus":
        problems.append(
            f"spec.metrics.provider: {spec.metrics.provider!r} reads pods one by one;"
            " in a cluster use prometheus"
        )
    if problems:
        raise RenderError(problems)
    return cast(rbac.RouterType, spec.router.type)


def _rollout_object(rollout: ModelRollout, namespace: str) -> dict[str, Any]:
    """The ModelRollout as a custom resource: spec as written, metadata reduced to name and
    namespace (whatever the API server added to a read-back object stays out)."""
    return {
        "apiVersion": rollout.api_version,
        "kind": rollout.kind,
        "metadata": {"name": rollout.metadata.name, "namespace": namespace},
        "spec": rollout.spec.model_dump(mode="json", exclude_none=True),
    }


def render(
    rollout: ModelRollout,
    *,
    gpu: bool,
    namespace: str | None = None,
    options: RenderOptions | None = None,
) -> list[dict[str, Any]]:
    """The objects in the order ``kubectl apply`` should create them.

    Raises `RenderError` for a spec that cannot run in a cluster, `InvalidManifestError` if an
    object fails validation."""
    options = options or RenderOptions()
    router = _check(rollout, options)
    namespace = namespace or rollout.metadata.namespace or "default"
    spec = rollout.spec
    model, stable, canary = spec.model, spec.stable.version, spec.canary.version
    # Under the replicas router the controller owns replica counts (they carry the split), so
    # no autoscaler may change them; the canary starts with none.
    by_ratio = router == "replicas"
    controller_image = options.controller_image or version_image(
        model, stable, gpu=gpu, repository=options.image_repo
    )
    objects: list[dict[str, Any]] = [
        crd.crd(),
        *controller_objects(namespace, controller_image, router),
    ]
    # The replicas router's total, all on stable until the controller moves the first step.
    total = spec.router.replicas or DEFAULT_TOTAL_REPLICAS
    for version, replicas in ((stable, total), (canary, 0)):
        objects.append(
            deployment(
                model,
                version,
                namespace=namespace,
                gpu=gpu,
                options=options,
                replicas=replicas if by_ratio else None,
            )
        )
        objects.append(service(model, version, namespace=namespace))
        if not by_ratio:
            objects.append(autoscaler(model, version, namespace=namespace, options=options))
    objects += routing_objects(
        router, model, stable=stable, canary=canary, namespace=namespace, options=options
    )
    objects += [
        service_monitor(model, namespace),
        prometheus_rule(spec, namespace, gpu=gpu),
        _rollout_object(rollout, namespace),
    ]
    problems = validate_objects(objects)
    if problems:
        raise InvalidManifestError(problems)
    return objects
