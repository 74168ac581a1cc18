"""Kubernetes: manifests, the ModelRollout CRD, and the Kubernetes-backed routers (not yet built)."""
