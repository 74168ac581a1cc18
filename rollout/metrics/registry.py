"""The metrics providers mlcanary knows, by the name a spec gives in ``spec.metrics.provider``.

Like the routers (`mlcanary.rollout.routers.registry`), each provider is one module of
`mlcanary.metrics` and this registry only names it, with the platforms it can serve: a provider
that reads the services of one machine one by one cannot serve a cluster. Adding a provider: one
module defining ``PROVIDER`` (a `mlcanary.metrics.kind.ProviderKind`) and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcanary.rollout.routers.registry import Platform

__all__ = ["PROVIDERS", "ProviderEntry"]


@dataclass(frozen=True)
class ProviderEntry:
    platforms: frozenset[Platform]
    module: str  # defines PROVIDER
    why_not_cluster: str = ""


PROVIDERS: dict[str, ProviderEntry] = {
    "prometheus": ProviderEntry(frozenset({"local", "cluster"}), "mlcanary.metrics.prometheus"),
    "scrape": ProviderEntry(
        frozenset({"local"}),
        "mlcanary.metrics.scrape",
        why_not_cluster="it reads the services of one machine one by one",
    ),
}
