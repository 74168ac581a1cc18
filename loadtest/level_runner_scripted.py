"""Test double: a `LevelRunner` that answers from a model of a queue-like target, without load.

Below ``capacity_rps`` every offered request is served at ``latency_ms``; above it the target
serves only its capacity and latency grows tenfold; above ``generator_limit_rps`` the generator
reports itself saturated; the first ``stalls`` levels the generator falls behind once (a
transient stall, as when another process takes the generator's core). It records the rates it was
asked for, so tests of the search logic can
check the bracketing and bisection steps exactly.
"""

from __future__ import annotations

import math

from mlcanary.loadtest.level import GeneratorLoad, LevelResult

__all__ = ["ScriptedLevelRunner"]


class ScriptedLevelRunner:
    def __init__(
        self,
        capacity_rps: float,
        latency_ms: float = 10.0,
        generator_limit_rps: float = math.inf,
        generator_shortfall_from_rps: float = math.inf,
        stalls: int = 0,
    ) -> None:
        self.capacity_rps = capacity_rps
        self.latency_ms = latency_ms
        self.generator_limit_rps = generator_limit_rps
        self.generator_shortfall_from_rps = generator_shortfall_from_rps
        self.stalls = stalls
        self.offered: list[float] = []

    def run(self, offered_rps: float) -> LevelResult:
        self.offered.append(offered_rps)
        over = offered_rps > self.capacity_rps
        achieved = min(offered_rps, self.capacity_rps)
        if offered_rps >= self.generator_shortfall_from_rps or self.stalls > 0:
            self.stalls = max(0, self.stalls - 1)
            achieved = 0.8 * offered_rps
        latency = self.latency_ms * (10 if over else 1)
        busy = 95.0 if offered_rps > self.generator_limit_rps else 20.0
        return LevelResult(
            offered_rps=offered_rps,
            achieved_rps=achieved,
            p50_ms=latency / 2,
            p95_ms=latency,
            p99_ms=latency * 1.5,
            error_ratio=0.0,
            requests=round(achieved * 10),
            users=10,
            held_s=10.0,
            stable=not over,
            latency_rising=over,
            generator=GeneratorLoad(busy, busy, processes=1, cores=2),
        )
