"""A scripted metrics provider: the test double for controller tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from mlcanary.rollout.metrics.base import MetricsUnavailableError, Target
from mlcanary.rollout.observations import ArmCounters, Observation

__all__ = ["ScriptedProvider"]


class ScriptedProvider:
    """Hands out prepared (stable, canary) counters in order; None stands for an outage."""

    def __init__(self, script: Iterable[tuple[ArmCounters, ArmCounters] | None]) -> None:
        self._script = deque(script)
        self._last: tuple[ArmCounters, ArmCounters] | None = None
        self.targets: list[Target] = []

    def observe(self, target: Target, now: datetime) -> Observation:
        self.targets.append(target)
        if self._script:
            self._last = self._script.popleft()
            if self._last is None:
                raise MetricsUnavailableError("scripted outage")
        if self._last is None:
            raise MetricsUnavailableError("no observation scripted")
        stable, canary = self._last
        return Observation(timestamp=now, stable=stable, canary=canary)

    def close(self) -> None:
        self._script.clear()
