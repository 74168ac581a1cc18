"""The metrics-provider interface."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mlcanary.names import NAME
from mlcanary.rollout.observations import Observation

__all__ = ["MetricsProvider", "MetricsUnavailableError", "Target", "response_counts"]


class MetricsUnavailableError(RuntimeError):
    """The metrics source cannot be reached at all."""


@dataclass(frozen=True)
class Target:
    """Whose counters to read. Names are validated here, so no provider ever puts an unchecked
    string into a query."""

    model: str
    stable_version: str
    canary_version: str
    endpoint: str = "/predict"
    # The user's metric checks, (name, PromQL template), and what their placeholders stand for
    # besides model and version (`mlcanary.rollout.templates`).
    queries: tuple[tuple[str, str], ...] = ()
    namespace: str = "default"
    interval: str = "30s"

    def __post_init__(self) -> None:
        for field, value in (
            ("model", self.model),
            ("stable_version", self.stable_version),
            ("canary_version", self.canary_version),
        ):
            if not NAME.fullmatch(value):
                raise ValueError(f"{field} {value!r} is not a valid model or version name")
        if not re.fullmatch(r"/[a-z0-9/_-]{0,62}", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} is not a valid path")


class MetricsProvider(Protocol):
    def observe(self, target: Target, now: datetime) -> Observation:
        """Both versions' cumulative counters. A failed part is None in the observation, never
        zero; only a source that cannot be reached at all raises MetricsUnavailableError."""
        ...

    def close(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...


def response_counts(by_code: Mapping[str, float]) -> dict[str, float]:
    """Requests, 5xx and 4xx from responses counted by status code: 4xx is the client's fault
    and is kept apart, so bad input never counts against a canary."""
    return {
        "requests": sum(by_code.values()),
        "server_errors": sum(n for code, n in by_code.items() if code.startswith("5")),
        "client_errors": sum(n for code, n in by_code.items() if code.startswith("4")),
    }
