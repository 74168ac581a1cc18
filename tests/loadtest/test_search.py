"""The search logic against the scripted level runner (a model target, no load)."""

from __future__ import annotations

import pytest

from mlcanary.loadtest.level_runner_scripted import ScriptedLevelRunner
from mlcanary.loadtest.search import SearchSettings, SearchStatus, search_capacity
from mlcanary.loadtest.verdict import Objective

OBJECTIVE = Objective(slo_p95_ms=50)


def test_doubling_brackets_then_bisection_narrows_to_the_resolution() -> None:
    runner = ScriptedLevelRunner(capacity_rps=130)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=10, resolution=0.1))
    assert runner.offered == [10, 20, 40, 80, 160, 120, 140, 130]
    assert result.status is SearchStatus.FOUND
    assert result.capacity_rps == 130
    assert [j.verdict.sustained for j in result.levels] == [True] * 4 + [False, True, False, True]


def test_a_start_above_capacity_halves_down_first() -> None:
    runner = ScriptedLevelRunner(capacity_rps=30)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=100, resolution=0.2))
    assert runner.offered == [100, 50, 25, 37.5, 31.25, 28.125]
    assert result.status is SearchStatus.FOUND
    assert result.capacity_rps == 28.125


def test_the_found_capacity_is_within_the_resolution_below_the_true_one() -> None:
    for capacity in (3.3, 47, 1234):
        result = search_capacity(
            ScriptedLevelRunner(capacity), OBJECTIVE, SearchSettings(start_rps=10, resolution=0.05)
        )
        assert result.capacity_rps is not None
        assert capacity / 1.05 <= result.capacity_rps <= capacity


def test_a_saturated_generator_refuses_to_claim_a_capacity() -> None:
    runner = ScriptedLevelRunner(capacity_rps=500, generator_limit_rps=100)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=25))
    assert result.status is SearchStatus.GENERATOR_LIMITED
    assert result.capacity is None
    assert runner.offered == [25, 50, 100, 200, 200]  # measured twice before refusing
    assert "no capacity claimed" in result.message
    assert "the target sustained 100.0 req/s" in result.message


def test_a_generator_that_misses_the_offered_rate_refuses_too() -> None:
    runner = ScriptedLevelRunner(capacity_rps=500, generator_shortfall_from_rps=150)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=50))
    assert result.status is SearchStatus.GENERATOR_LIMITED
    assert "the generator fell behind" in result.message


def test_a_level_the_generator_fell_behind_on_once_is_measured_again() -> None:
    runner = ScriptedLevelRunner(capacity_rps=130, stalls=1)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=10, resolution=0.1))
    assert runner.offered == [10, 10, 20, 40, 80, 160, 120, 140, 130]
    assert result.status is SearchStatus.FOUND
    assert result.capacity_rps == 130
    assert result.levels[0].verdict.generator_limited


def test_with_no_retries_one_stall_is_enough_to_refuse() -> None:
    runner = ScriptedLevelRunner(capacity_rps=130, stalls=1)
    settings = SearchSettings(start_rps=10, generator_retries=0)
    assert search_capacity(runner, OBJECTIVE, settings).status is SearchStatus.GENERATOR_LIMITED
    assert runner.offered == [10]


def test_the_maximum_rate_sustained_is_a_lower_bound() -> None:
    runner = ScriptedLevelRunner(capacity_rps=10_000)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=10, max_rps=70))
    assert runner.offered == [10, 20, 40, 70]
    assert result.status is SearchStatus.AT_LEAST
    assert result.capacity_rps == 70


def test_nothing_sustained_down_to_the_minimum() -> None:
    runner = ScriptedLevelRunner(capacity_rps=0.5)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=8, min_rps=1))
    assert runner.offered == [8, 4, 2, 1]
    assert result.status is SearchStatus.BELOW_MINIMUM
    assert result.capacity is None


def test_running_out_of_levels_leaves_the_bracket_unresolved() -> None:
    runner = ScriptedLevelRunner(capacity_rps=130)
    result = search_capacity(runner, OBJECTIVE, SearchSettings(start_rps=10, max_levels=6))
    assert result.status is SearchStatus.UNRESOLVED
    assert "between 120.0 and 160.0" in result.message
    assert result.capacity_rps == 120


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start_rps": 0}, "start_rps"),
        ({"start_rps": 10, "max_rps": 5}, "max_rps"),
        ({"resolution": 1.5}, "resolution"),
        ({"max_levels": 0}, "max_levels"),
        ({"generator_retries": -1}, "generator_retries"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        SearchSettings(**kwargs)
