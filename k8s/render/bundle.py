"""Everything a cluster needs for one ModelRollout, rendered and validated.

Why validate here rather than leave it to the API server: a manifest that the cluster would
refuse, or worse accept with a field silently pruned, must never be printed or written. Every
object goes through `mlcanary.k8s.validation` and rendering fails naming each problem.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import crd
from mlcanary.k8s.cluster_rules import cluster_problems
from mlcanary.k8s.render.controller import controller_objects, notification_env
from mlcanary.k8s.render.errors import InvalidManifestError, RenderError
from mlcanary.k8s.render.ledger import ledger_objects
from mlcanary.k8s.render.mirror import config_map, has_shadow
from mlcanary.k8s.render.monitoring import prometheus_rule, service_monitor
from mlcanary.k8s.render.options import RenderOptions
from mlcanary.k8s.render.workloads import autoscaler, deployment, service
from mlcanary.k8s.routers.kind import ClusterRouterKind, RouteContext, cluster_router
from mlcanary.k8s.validation import validate_objects
from mlcanary.rollout.spec import ModelRollout
from mlcanary.serving.image.names import default_repository, repository_problem, version_image

__all__ = ["render"]


def _check(rollout: ModelRollout, options: RenderOptions) -> ClusterRouterKind:
    spec = rollout.spec
    problems = [f"{field}: {problem}" for field, problem in cluster_problems(spec)]
    if options.image_repo is None and repository_problem(default_repository(spec.model)):
        problems.append(
            f"spec.model: {spec.model!r} cannot name an image repository; give --image-repo"
        )
    if problems:
        raise RenderError(problems)
    return cluster_router(spec.router.type)


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
    controller_image = options.controller_image or version_image(
        model, stable, gpu=gpu, repository=options.image_repo
    )
    shadow = has_shadow(spec)
    objects: list[dict[str, Any]] = [
        crd.crd(),
        *controller_objects(
            namespace, controller_image, router.name, notification_env(rollout), shadow=shadow
        ),
    ]
    if options.ledger_url is None:
        objects += ledger_objects(model, namespace)
    if shadow:
        objects.append(config_map(model, namespace))
    # A router that carries the split in replica counts owns them, so no autoscaler may change
    # them: all of its total on stable until the controller moves the first step, none on the
    # canary. Otherwise the autoscaler owns them and the manifests name none.
    total = router.replica_total(spec) if router.replica_total is not None else None
    for version, replicas in ((stable, total), (canary, 0 if total is not None else None)):
        objects.append(
            deployment(
                model,
                version,
                namespace=namespace,
                gpu=gpu,
                options=options,
                replicas=replicas,
                shadow=shadow,
            )
        )
        objects.append(service(model, version, namespace=namespace))
        if total is None:
            objects.append(autoscaler(model, version, namespace=namespace, options=options))
    objects += router.render(RouteContext(model, stable, canary, namespace, options))
    objects += [
        service_monitor(model, namespace),
        prometheus_rule(spec, namespace, gpu=gpu),
        _rollout_object(rollout, namespace),
    ]
    problems = validate_objects(objects)
    if problems:
        raise InvalidManifestError(problems)
    return objects
