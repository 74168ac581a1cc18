"""Kubernetes manifests for one ModelRollout: `render` builds and validates them, `output`
prints them as one YAML stream or writes them as a kustomize tree."""

from mlcanary.k8s.render.bundle import render
from mlcanary.k8s.render.errors import InvalidManifestError, RenderError
from mlcanary.k8s.render.options import AutoscaleMetric, RenderOptions
from mlcanary.k8s.render.output import to_yaml, write_kustomize
from mlcanary.serving.image.names import version_image

__all__ = [
    "AutoscaleMetric",
    "InvalidManifestError",
    "RenderError",
    "RenderOptions",
    "render",
    "to_yaml",
    "version_image",
    "write_kustomize",
]
