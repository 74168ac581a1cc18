"""Kubernetes: manifests, the ModelRollout CRD, Kubernetes routers and status store (to come)."""
