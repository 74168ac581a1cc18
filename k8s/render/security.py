"""The hardening every pod that mlcanary renders shares (serving and controller alike).

Why: non-root, no capabilities, no privilege escalation, the runtime's default seccomp profile
and a read-only root filesystem (with an emptyDir for scratch files) pass the Pod Security
Standards' "restricted" profile, so the manifests can be applied in a namespace that enforces it.

The user is the one the images of `mlcanary build` run as (uid 10001). The group is not the
image's (0, for platforms that pick a random uid) but 10001 too: everything the process reads in
the image (the virtualenv, the Bento under /opt/bento) is owned by root and readable by anyone,
so no group membership is needed, and none is given. The only writes go to the emptyDir at
/tmp, which ``fsGroup`` hands to that group.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCRATCH", "container_security_context", "pod_security_context", "scratch_env"]

# An emptyDir private to the pod, mounted over /tmp: the only writable place besides those a
# container mounts on purpose. HOME points there too, for libraries that cache under ~.
SCRATCH = "/tmp"  # noqa: S108 (a pod-private emptyDir, not a shared /tmp)
_RUN_AS = 10001  # the images' user; as a group, one that owns nothing in them


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": _RUN_AS,
        "runAsGroup": _RUN_AS,
        "fsGroup": _RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_env() -> list[dict[str, Any]]:
    return [{"name": "HOME", "value": SCRATCH}]
