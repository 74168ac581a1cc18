"""The cluster's mirror: the model's ConfigMap, which every version's pods mount as their
mirror file (`mlcanary.k8s.render.mirror`).

The copy goes to the canary's own Service (``http://{service}.{namespace}.svc:3000``), never
through the model's route, so a copy is not counted as a client's request by the router and the
route's weights stay the rollout's. The controller reads the ConfigMap and patches its data only
when it differs, so a tick that changes nothing writes nothing (and the kubelets have nothing to
reload).
"""

from __future__ import annotations

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s import naming
from mlcanary.k8s.api_objects import MERGE_PATCH, NOT_FOUND
from mlcanary.rollout.mirror.base import MirrorTarget, MirrorUnavailableError
from mlcanary.serving.mirror_file import MirrorSetting, mirror_file_name, render_setting

__all__ = ["KubernetesMirror", "service_url"]


def service_url(service: str, namespace: str) -> str:
    """Where a version's Service answers inside the cluster."""
    return f"http://{service}.{namespace}.svc:{naming.SERVING_PORT}"


class KubernetesMirror:
    """Sets ``data[{model}.json]`` of the model's mirror ConfigMap; a backend is the canary's
    Service name (`mlcanary.k8s.workloads`)."""

    def __init__(self, api: CoreV1Api, namespace: str) -> None:
        self._api = api
        self._namespace = namespace

    def set(self, model: str, target: MirrorTarget | None) -> None:
        name, key = naming.mirror_config_map(model), mirror_file_name(model)
        where = f"ConfigMap {self._namespace}/{name}"
        setting = (
            None
            if target is None
            else MirrorSetting(
                stable=target.stable,
                canary=target.canary,
                url=service_url(target.backend, self._namespace),
                fraction=target.fraction,
            )
        )
        content = render_setting(setting).decode()
        try:
            current = self._api.read_namespaced_config_map(name, self._namespace)
            if (current.data or {}).get(key) == content:
                return
            self._api.patch_namespaced_config_map(
                name, self._namespace, {"data": {key: content}}, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise MirrorUnavailableError(
                    f"{where} does not exist: apply the manifests that `mlcanary k8s render` "
                    "writes for a spec with a shadow step"
                ) from exc
            problem = f"cannot write {where}: {exc.status} {exc.reason}"
            raise MirrorUnavailableError(problem) from exc
        except HTTPError as exc:
            raise MirrorUnavailableError(f"cannot reach the API server: {exc}") from exc
