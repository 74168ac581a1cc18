"""Whether a measured level sustained the objective, and whose fault it was if not.

The distinction matters: a level the target could not serve bounds the capacity from above, but
a level the load generator could not produce says nothing about the target, and a capacity
claimed from it would be the generator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlcanary.loadtest.level import LevelResult

__all__ = ["Objective", "Verdict", "judge"]


@dataclass(frozen=True)
class Objective:
    slo_p95_ms: float
    error_budget: float = 0.01
    # An open-loop level is sustained only if (almost) every offered request was made: a target
    # that falls behind makes the paced users miss their starts.
    max_shortfall: float = 0.05

    def __post_init__(self) -> None:
        if self.slo_p95_ms <= 0:
            raise ValueError(f"slo_p95_ms must be > 0, got {self.slo_p95_ms}")
        if not 0 <= self.error_budget < 1:
            raise ValueError(f"error_budget must be within [0, 1), got {self.error_budget}")
        if not 0 < self.max_shortfall < 1:
            raise ValueError(f"max_shortfall must be within (0, 1), got {self.max_shortfall}")


@dataclass(frozen=True)
class Verdict:
    sustained: bool
    generator_limited: bool = False
    reasons: list[str] = field(default_factory=list)


def judge(level: LevelResult, objective: Objective) -> Verdict:
    load = level.generator
    if load.saturated():
        return Verdict(
            False,
            True,
            [
                f"load generator saturated (busiest process {load.busiest_process_pct:.0f}% of a"
                f" core, {load.total_pct:.0f}% over {load.cores} cores)"
            ],
        )
    if level.requests == 0:
        return Verdict(False, False, ["no request completed"])
    reasons = []
    if level.error_ratio > objective.error_budget:
        reasons.append(
            f"error ratio {level.error_ratio:.4f} over the budget {objective.error_budget:.4f}"
        )
    if level.p95_ms > objective.slo_p95_ms:
        reasons.append(
            f"p95 {level.p95_ms:.0f} ms over the objective {objective.slo_p95_ms:.0f} ms"
        )
    if level.latency_rising:
        reasons.append("latency still rising at the end of the hold (a queue building)")
    short = level.achieved_rps < (1 - objective.max_shortfall) * level.offered_rps
    if short and not reasons:
        return Verdict(
            False,
            True,
            [
                f"achieved {level.achieved_rps:.1f} of {level.offered_rps:.1f} req/s offered while"
                " the target answered within the objective: the generator fell behind"
            ],
        )
    if short:
        reasons.append(
            f"achieved {level.achieved_rps:.1f} of {level.offered_rps:.1f} req/s offered"
        )
    return Verdict(not reasons, False, reasons)
