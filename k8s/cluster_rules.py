"""Whether a spec can run in a cluster: the one check the renderer and the controller share.

The platform rules every mode has (`mlcanary.rollout.platforms`: a cluster router, a metrics
provider that can serve a cluster, the router's own rules), plus what Kubernetes itself asks of
the names a spec gives: model and version names become label values, which must end with a
letter or digit.
"""

from __future__ import annotations

from mlcanary.rollout.platforms import platform_problems
from mlcanary.rollout.spec import RolloutSpec

__all__ = ["cluster_problems"]


def cluster_problems(spec: RolloutSpec) -> list[tuple[str, str]]:
    problems = platform_problems(spec, "cluster")
    for field, value in (
        ("spec.model", spec.model),
        ("spec.stable.version", spec.stable.version),
        ("spec.canary.version", spec.canary.version),
    ):
        if not value[-1].isalnum():
            problems.append((field, f"{value!r} must end with a letter or digit (a label value)"))
    return problems
