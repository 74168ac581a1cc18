"""Model versions served as Kubernetes Deployments, one per version (`naming.workload`).

The manifests (`mlcanary k8s render`, applied by a person or GitOps) create the Deployments and
Services; the controller only reads their readiness and scales them:

* ``ensure`` finds the version's Deployment, scales it up to ``replicas`` if it is at 0 (a
  version retired earlier, or rendered at 0 to start cold), and answers the version's Service
  name once the Deployment is ready: its controller has observed the current generation and at
  least one pod is ready. Until then it raises WorkloadNotReadyError; the rollout holds without
  the canary's data and rolls back at the step's maxDuration.
* under the ``replicas`` router (``router_scales``), replica counts are the router's: ``ensure``
  only checks that the Deployment exists. There a version at 0 replicas is one the router has not
  given traffic yet, and readiness needs no gate: the Service sends nothing to a pod that is not
  ready, so a canary that never becomes ready gets no traffic either, and no data.
* ``retire`` scales the version that lost (the old stable after a promotion, the canary after a
  rollback) to 0 rather than deleting it: the Deployment stays as the manifests declare it, so
  a later rollout back to that version is a scale-up. A HorizontalPodAutoscaler leaves a
  Deployment at 0 alone until it is scaled up again.
"""

from __future__ import annotations

import logging

from kubernetes.client import AppsV1Api, V1Deployment
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s import naming
from mlcanary.k8s.api_objects import MERGE_PATCH, NOT_FOUND
from mlcanary.rollout.workloads import WorkloadNotReadyError

__all__ = ["KubernetesWorkloads"]

logger = logging.getLogger("mlcanary.k8s")


class KubernetesWorkloads:
    def __init__(
        self, api: AppsV1Api, namespace: str, replicas: int = 1, *, router_scales: bool = False
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._replicas = replicas
        self._router_scales = router_scales

    def _where(self, model: str, version: str) -> str:
        return f"Deployment {self._namespace}/{naming.workload(model, version)}"

    def _scale(self, model: str, version: str, replicas: int) -> None:
        self._api.patch_namespaced_deployment(
            naming.workload(model, version),
            self._namespace,
            {"spec": {"replicas": replicas}},
            _content_type=MERGE_PATCH,
        )

    def ensure(self, model: str, version: str) -> str:
        name = naming.workload(model, version)
        where = self._where(model, version)
        try:
            deployment = self._api.read_namespaced_deployment(name, self._namespace)
            if self._router_scales:
                return name
            if deployment.spec is not None and deployment.spec.replicas == 0:
                self._scale(model, version, self._replicas)
                raise WorkloadNotReadyError(
                    f"{where} was at 0 replicas: scaled to {self._replicas}, not ready yet"
                )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise WorkloadNotReadyError(
                    f"{where} does not exist: apply the manifests that `mlcanary k8s render` "
                    "writes for this model"
                ) from exc
            raise WorkloadNotReadyError(f"cannot read {where}: {exc.status} {exc.reason}") from exc
        except HTTPError as exc:
            raise WorkloadNotReadyError(f"cannot reach the API server: {exc}") from exc
        problem = _not_ready(deployment)
        if problem is not None:
            raise WorkloadNotReadyError(f"{where} is not ready: {problem}")
        return name

    def retire(self, model: str, version: str) -> None:
        """Best effort: a version left running costs resources, not traffic (no route sends it
        any), so a failure is logged instead of failing the finished rollout."""
        try:
            self._scale(model, version, 0)
        except (ApiException, HTTPError) as exc:
            logger.warning("cannot scale %s to 0: %s", self._where(model, version), exc)


def _not_ready(deployment: V1Deployment) -> str | None:
    generation = deployment.metadata.generation if deployment.metadata else None
    status = deployment.status
    observed = status.observed_generation if status else None
    if generation is not None and (observed is None or observed < generation):
        return f"generation {generation} not yet observed by its controller (at {observed})"
    ready = (status.ready_replicas if status else None) or 0
    if ready < 1:
        return "no ready pod"
    return None
