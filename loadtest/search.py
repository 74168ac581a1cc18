"""The capacity search: the highest offered rate whose level sustains the objective.

Doubling from a start rate brackets the capacity in a few levels whatever its order of magnitude
(10 req/s or 10,000); bisection then narrows the bracket to ``resolution`` (relative), each level
halving it. A level the target fails is never retried: the search assumes that more load is
never easier to serve, which holds for a queue-like server. A level the load generator could not
produce (`verdict.judge`) is measured again, ``generator_retries`` times: a generator sharing its
machine can stall for a moment while another process holds its core, and that says nothing of
the target. When it falls behind again, the search refuses to claim a capacity.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlcanary.loadtest.level import LevelResult, LevelRunner
from mlcanary.loadtest.verdict import Objective, Verdict, judge

__all__ = ["JudgedLevel", "SearchResult", "SearchSettings", "SearchStatus", "search_capacity"]


class SearchStatus(enum.StrEnum):
    FOUND = "found"  # bracketed to the resolution: capacity is the highest sustained level
    AT_LEAST = "at_least"  # the maximum rate was sustained: capacity is at least that
    BELOW_MINIMUM = "below_minimum"  # not even the minimum rate was sustained
    GENERATOR_LIMITED = "generator_limited"  # refused: the generator was the bottleneck
    UNRESOLVED = "unresolved"  # out of levels before the bracket reached the resolution


@dataclass(frozen=True)
class SearchSettings:
    start_rps: float = 10.0
    resolution: float = 0.10
    min_rps: float = 1.0
    max_rps: float = 100_000.0
    max_levels: int = 16
    generator_retries: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.min_rps <= self.start_rps <= self.max_rps:
            raise ValueError(
                f"need 0 < min_rps <= start_rps <= max_rps, got min_rps={self.min_rps}, "
                f"start_rps={self.start_rps}, max_rps={self.max_rps}"
            )
        if not 0 < self.resolution < 1:
            raise ValueError(f"resolution must be within (0, 1), got {self.resolution}")
        if self.max_levels < 1:
            raise ValueError(f"max_levels must be at least 1, got {self.max_levels}")
        if self.generator_retries < 0:
            raise ValueError(f"generator_retries must be >= 0, got {self.generator_retries}")


@dataclass(frozen=True)
class JudgedLevel:
    level: LevelResult
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        return {
            **self.level.to_json(),
            "sustained": self.verdict.sustained,
            "generator_limited": self.verdict.generator_limited,
            "reasons": self.verdict.reasons,
        }


@dataclass(frozen=True)
class SearchResult:
    status: SearchStatus
    message: str
    capacity: LevelResult | None  # the highest sustained level, when a capacity is claimed
    levels: list[JudgedLevel] = field(default_factory=list)

    @property
    def capacity_rps(self) -> float | None:
        return self.capacity.achieved_rps if self.capacity is not None else None


def search_capacity(
    runner: LevelRunner,
    objective: Objective,
    settings: SearchSettings,
    on_level: Callable[[JudgedLevel], None] = lambda _: None,
) -> SearchResult:
    levels: list[JudgedLevel] = []
    good: LevelResult | None = None
    bad: LevelResult | None = None

    def result(status: SearchStatus, message: str, capacity: LevelResult | None) -> SearchResult:
        return SearchResult(status, message, capacity, levels)

    rate = settings.start_rps
    retries = settings.generator_retries
    while len(levels) < settings.max_levels:
        judged = JudgedLevel(level := runner.run(rate), judge(level, objective))
        levels.append(judged)
        on_level(judged)
        if judged.verdict.generator_limited and retries > 0:
            retries -= 1
            continue
        if judged.verdict.generator_limited:
            floor = f"; the target sustained {good.achieved_rps:.1f} req/s" if good else ""
            return result(
                SearchStatus.GENERATOR_LIMITED,
                f"no capacity claimed: at {rate:.1f} req/s {judged.verdict.reasons[0]}{floor}."
                " Add generator processes (--processes) or machines (--workers).",
                None,
            )
        if judged.verdict.sustained:
            good = level
        else:
            bad = level
        if good is not None and bad is not None:
            if bad.offered_rps - good.offered_rps <= settings.resolution * good.offered_rps:
                return result(
                    SearchStatus.FOUND,
                    f"capacity {good.achieved_rps:.1f} req/s: sustained at {good.offered_rps:.1f}"
                    f" offered, not at {bad.offered_rps:.1f}",
                    good,
                )
            rate = (good.offered_rps + bad.offered_rps) / 2
        elif good is not None:
            if rate >= settings.max_rps:
                return result(
                    SearchStatus.AT_LEAST,
                    f"the maximum rate {settings.max_rps:.1f} req/s was sustained: capacity is at"
                    " least that",
                    good,
                )
            rate = min(2 * rate, settings.max_rps)
        else:
            if rate <= settings.min_rps:
                return result(
                    SearchStatus.BELOW_MINIMUM,
                    f"not even the minimum rate {settings.min_rps:.1f} req/s was sustained",
                    None,
                )
            rate = max(rate / 2, settings.min_rps)
    bracket = (
        f" between {good.offered_rps:.1f} and {bad.offered_rps:.1f} req/s"
        if good is not None and bad is not None
        else ""
    )
    return result(
        SearchStatus.UNRESOLVED,
        f"stopped after {settings.max_levels} levels with the capacity{bracket} unresolved",
        good,
    )
