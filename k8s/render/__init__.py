"""Kubernetes manifests for one ModelRollout: `render` builds and validates them, `output`
prints them as one YAML stream or writes them as a kustomize tree."""

from mlcanary.k8s.render.bundle import CLUSTER_ROUTERS, render
from mlcanary.k8s.render.errors import InvalidManifestError, RenderError
from mlcanary.k8s.render.options import AutoscaleMetric, RenderOptions, default_image
from mlcanary.k8s.render.output import to_yaml, write_kustomize

__all__ = [
    "CLUSTER_ROUTERS",
    "AutoscaleMetric",
    "InvalidManifestError",
    "RenderError",
    "RenderOptions",
    "default_image",
    "render",
    "to_yaml",
    "write_kustomize",
]
