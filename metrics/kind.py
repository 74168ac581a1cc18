"""How a platform builds the metrics provider a spec names, through the registry.

Each provider module defines ``PROVIDER``, whose ``build`` takes the spec's ``metrics`` section
and what the platform can offer besides (`Sources`); `metrics_provider` picks the module by the
name in `mlcanary.rollout.metrics.registry`, so no platform branches on provider names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mlcanary.rollout.metrics.base import MetricsProvider
from mlcanary.rollout.metrics.registry import PROVIDERS
from mlcanary.rollout.spec import MetricsSpec

__all__ = ["ProviderKind", "Sources", "metrics_provider"]


def _none() -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class Sources:
    """What a platform offers a provider beyond the spec: the base URLs of the services it runs,
    asked again at every read because they change during a rollout."""

    service_urls: Callable[[], Sequence[str]] = field(default=_none)


class ProviderKind(Protocol):
    def build(self, spec: MetricsSpec, sources: Sources) -> MetricsProvider: ...


def metrics_provider(spec: MetricsSpec, sources: Sources) -> MetricsProvider:
    kind: ProviderKind = importlib.import_module(PROVIDERS[spec.provider].module).PROVIDER
    return kind.build(spec, sources)
