"""Kubernetes: manifests and their validation, the ModelRollout CRD, and the in-cluster
controller with its routers, status store and workloads (and an API server test double)."""
