from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcanary.loadtest.rollout_capacity import capacity_warnings, read_capacity
from mlcanary.rollout.spec import RolloutSpec


def spec(steps: list[int]) -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "model": "digits",
            "stable": {"version": "v1"},
            "canary": {"version": "v4"},
            "metrics": {"provider": "scrape"},
            "steps": steps,
        }
    )


@pytest.mark.parametrize(
    ("steps", "capacity", "current", "warned_steps"),
    [
        ([10, 100], 20.0, 100.0, [100]),  # 10 req/s fits, 100 does not
        ([10, 100], 200.0, 100.0, []),  # everything fits
        ([10, 100], 100.0, 100.0, []),  # exactly at capacity still fits
        ([10, 100], 5.0, 100.0, [10, 100]),  # not even the first step
        ([5, 25, 50, 100], 30.0, 100.0, [50, 100]),
        ([10, 100], 1.0, 0.0, []),  # no traffic
    ],
)
def test_warns_for_each_step_whose_share_exceeds_the_canary_capacity(
    steps, capacity, current, warned_steps
) -> None:
    warnings = capacity_warnings(spec(steps), capacity, current)
    assert [int(w.split("%")[0].removeprefix("step ")) for w in warnings] == warned_steps


def test_the_warning_says_how_much_and_what_to_do() -> None:
    (warning,) = capacity_warnings(spec([10, 100]), 20.0, 100.0)
    assert "canary v4 would get 100.0 req/s" in warning
    assert "measured capacity of 20.0 req/s (5.0x)" in warning
    assert "a step below 20%" in warning


@pytest.mark.parametrize(
    ("capacity", "current", "field"),
    [(0.0, 10.0, "canary_capacity_rps"), (10.0, -1.0, "current_rps")],
)
def test_bad_numbers_name_the_argument(capacity, current, field) -> None:
    with pytest.raises(ValueError, match=field):
        capacity_warnings(spec([10, 100]), capacity, current)


def test_reads_the_capacity_from_a_report(tmp_path: Path) -> None:
    report = tmp_path / "capacity.json"
    report.write_text(json.dumps({"status": "found", "capacity_rps": 42.5}))
    assert read_capacity(report) == 42.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"status": "generator_limited", "capacity_rps": None}), "capacity_rps"),
        ("not json", "not a readable capacity report"),
        (json.dumps([1, 2]), "capacity_rps"),
    ],
)
def test_a_report_without_a_capacity_is_refused(tmp_path: Path, content, message) -> None:
    report = tmp_path / "capacity.json"
    report.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_capacity(report)


def test_a_shadow_step_sends_the_canary_copies_of_its_fraction_of_all_traffic() -> None:
    shadowed = RolloutSpec.model_validate(
        {
            "model": "digits",
            "stable": {"version": "v1"},
            "canary": {"version": "v4"},
            "metrics": {"provider": "scrape"},
            "steps": ["shadow", 10, 100],
            "analysis": {"shadow": {"fraction": 0.5, "minAgreement": 0.9}},
        }
    )
    [shadow, full] = capacity_warnings(shadowed, 40.0, 100.0)
    assert shadow.startswith("step shadow: canary v4 would get 50.0 req/s of 100.0")
    assert full.startswith("step 100%:")
