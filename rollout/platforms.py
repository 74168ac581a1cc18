"""Whether a spec can run on a platform: the one check the local CLI, the cluster controller and
the manifest renderer all make before anything starts.

A spec valid in itself may still name a router or metrics provider of the other platform (a
``gateway-api`` rollout given to ``mlcanary rollout run``), break a rule of the router it
names (a local router address that is not loopback), or read a notification's URL from a
Secret on a machine that has none. Each problem names its field.
"""

from __future__ import annotations

from mlcanary.rollout.metrics.registry import PROVIDERS
from mlcanary.rollout.routers.registry import ROUTERS, Platform, router_kind
from mlcanary.rollout.spec import RolloutSpec

__all__ = ["platform_problems"]

_WHERE = {"local": "on this machine", "cluster": "in a cluster"}


def platform_problems(spec: RolloutSpec, platform: Platform) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    router = ROUTERS[spec.router.type]
    if router.platform != platform:
        here = ", ".join(name for name, entry in ROUTERS.items() if entry.platform == platform)
        problems.append(
            (
                "spec.router.type",
                f"{spec.router.type!r} routes {_WHERE[router.platform]}; "
                f"{_WHERE[platform]} use {here}",
            )
        )
    else:
        problems += router_kind(spec.router.type).spec_problems(spec)
    provider = PROVIDERS[spec.metrics.provider]
    if platform not in provider.platforms:
        here = ", ".join(name for name, entry in PROVIDERS.items() if platform in entry.platforms)
        problems.append(
            (
                "spec.metrics.provider",
                f"{spec.metrics.provider!r} cannot serve {_WHERE[platform]}: "
                f"{provider.why_not_cluster}; use {here}",
            )
        )
    if platform == "local":
        problems += [
            (
                f"spec.notifications[{index}].urlFrom.secretKeyRef",
                "a Secret is read in a cluster only; on this machine name a variable of the "
                "environment with urlFrom.env",
            )
            for index, target in enumerate(spec.notifications)
            if target.url_from is not None and target.url_from.secret_key_ref is not None
        ]
    return problems
