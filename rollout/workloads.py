"""Workloads: what serves each model version (local processes, or Kubernetes Deployments).

The controller asks for a version to be served before it routes traffic to it, and retires the
version nobody routes to once a rollout has ended.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["WorkloadNotReadyError", "Workloads"]


class WorkloadNotReadyError(RuntimeError):
    """The version could not be started or is not ready; no traffic must go to it."""


class Workloads(Protocol):
    def ensure(self, model: str, version: str) -> str:
        """Serve the version if it is not served yet; its backend address (URL or Service)."""
        ...

    def retire(self, model: str, version: str) -> None: ...
