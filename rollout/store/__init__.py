"""The status-store port: where a rollout's status survives the controller.

One interface (`base.StatusStore`) and its test double (`memory`). The platforms implement it:
`mlcanary.local.file_store` (an atomically replaced JSON file) and
`mlcanary.k8s.status_store` (the ModelRollout's status subresource).
"""

from mlcanary.rollout.store.base import StatusStore, StoredStatus

__all__ = ["StatusStore", "StoredStatus"]
