"""Status stores: where a rollout's status survives the controller.

One interface (`base.StatusStore`), one module per implementation: `file` (an atomically
replaced JSON file, the single-machine default) and `memory` (the test double). The Kubernetes
store, the CRD's status subresource, implements the same interface.
"""

from mlcanary.rollout.store.base import StatusStore, StoredStatus

__all__ = ["StatusStore", "StoredStatus"]
