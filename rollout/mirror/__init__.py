"""The mirror port: how the controller tells a model's stable servers to copy requests to the
canary during a shadow step (`mlcanary.rollout.shadow`).

One interface (`base.Mirror`) and its test double (`memory`). The platforms implement it: on
one machine a file the local services read (`mlcanary.local.mirror`), in a cluster a ConfigMap
mounted into every version's pods (`mlcanary.k8s.mirror`). Either way the serving layer does
the copying and the comparing (`mlcanary.serving.shadow`), so the mechanism works behind any
router.
"""

from mlcanary.rollout.mirror.base import Mirror, MirrorTarget, MirrorUnavailableError

__all__ = ["Mirror", "MirrorTarget", "MirrorUnavailableError"]
