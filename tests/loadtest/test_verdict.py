from __future__ import annotations

import dataclasses

import pytest

from mlcanary.loadtest.level import GeneratorLoad, LevelResult
from mlcanary.loadtest.verdict import Objective, judge

OBJECTIVE = Objective(slo_p95_ms=50, error_budget=0.01)
GOOD = LevelResult(
    offered_rps=100, achieved_rps=99, p50_ms=10, p95_ms=40, p99_ms=60, error_ratio=0.0,
    requests=600, users=20, held_s=8, stable=True, latency_rising=False,
    generator=GeneratorLoad(busiest_process_pct=30, total_pct=30, processes=1, cores=2),
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "sustained", "generator_limited", "reason"),
    [
        ({}, True, False, None),
        ({"p95_ms": 51}, False, False, "p95 51 ms over the objective 50 ms"),
        ({"error_ratio": 0.02}, False, False, "error ratio"),
        ({"latency_rising": True}, False, False, "latency still rising"),
        ({"achieved_rps": 80, "p95_ms": 400}, False, False, "achieved 80.0 of 100.0"),
        ({"achieved_rps": 80}, False, True, "the generator fell behind"),
        (
            {"generator": GeneratorLoad(90, 90, 1, 2)},
            False,
            True,
            "load generator saturated (busiest process 90%",
        ),
        ({"generator": GeneratorLoad(80, 180, 3, 2)}, False, True, "180% over 2 cores"),
        ({"requests": 0, "achieved_rps": 0}, False, False, "no request completed"),
    ],
)
def test_judge(change, sustained, generator_limited, reason) -> None:
    verdict = judge(dataclasses.replace(GOOD, **change), OBJECTIVE)
    assert verdict.sustained is sustained
    assert verdict.generator_limited is generator_limited
    if reason is None:
        assert verdict.reasons == []
    else:
        assert any(reason in r for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"slo_p95_ms": 0}, "slo_p95_ms"), ({"slo_p95_ms": 5, "error_budget": 1.5}, "error_budget")],
)
def test_bad_objectives_name_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        Objective(**kwargs)
