"""Counter windows, histogram quantiles and exceedances."""

from __future__ import annotations

import math

import pytest

from mlcanary.rollout.observations import (
    ArmCounters,
    CounterWindow,
    Exceedance,
    exceedance,
    histogram_quantile,
)


@pytest.mark.parametrize(
    ("values", "total"),
    [
        ([100, 150, 180], 80),
        ([100, 150, 20, 50], 80),  # a reset counts nothing for its tick, then 30
        ([100, None, 160], 60),  # a failed query in between: the next tick counts the gap
        ([None, 10, 30], 20),  # first seen late: that tick is the baseline
        ([math.nan, 10, 30], 20),
    ],
)
def test_counter_windows_count_increases_tick_by_tick(values, total):
    window = CounterWindow()
    for value in values:
        window = window.update(ArmCounters(requests=value))
    assert window.total.requests == total


def test_a_reset_in_one_counter_rebases_the_whole_arm():
    """A summed counter can drop for one outcome and not the other: count neither that tick."""
    window = CounterWindow().update(ArmCounters(feedback_correct=900, feedback_incorrect=100))
    window = window.update(ArmCounters(feedback_correct=500, feedback_incorrect=130))
    assert (window.total.feedback_correct, window.total.feedback_incorrect) == (0, 0)
    window = window.update(ArmCounters(feedback_correct=590, feedback_incorrect=140))
    assert (window.total.feedback_correct, window.total.feedback_incorrect) == (90, 10)


def test_histograms_reset_together_and_paused_traffic_is_skipped():
    window = CounterWindow().update(ArmCounters(latency_buckets={0.1: 10, math.inf: 20}))
    window = window.update(ArmCounters(latency_buckets={0.1: 14, math.inf: 28}))
    assert window.total.latency_buckets == {0.1: 4, math.inf: 8}
    window = window.update(ArmCounters(latency_buckets={0.1: 15, math.inf: 2}))
    assert window.total.latency_buckets == {0.1: 4, math.inf: 8}
    window = window.update(ArmCounters(latency_buckets={0.1: 19, math.inf: 12}), count=False)
    window = window.update(ArmCounters(latency_buckets={0.1: 20, math.inf: 14}))
    assert window.total.latency_buckets == {0.1: 5, math.inf: 10}


def test_a_flip_born_after_the_disagreements_were_first_seen_counts_whole():
    """The servers export disagreements at zero from the first copy and create a flip cell at
    its first flip: a cell new to an arm whose disagreements were seen was born in the window."""
    window = CounterWindow().update(ArmCounters(shadow_agreed=40, shadow_disagreed=0))
    window = window.update(
        ArmCounters(shadow_agreed=40, shadow_disagreed=5, shadow_flips={"3→8": 5})
    )
    assert window.total.shadow_flips == {"3→8": 5}
    assert window.total.shadow_disagreed == 5


def test_flips_first_seen_with_the_disagreements_may_predate_the_step():
    window = CounterWindow().update(ArmCounters(shadow_disagreed=9, shadow_flips={"3→8": 9}))
    window = window.update(ArmCounters(shadow_disagreed=10, shadow_flips={"3→8": 10}))
    assert window.total.shadow_flips == {"3→8": 1}


def test_a_histogram_without_its_inf_bucket_is_missing():
    assert ArmCounters(latency_buckets={0.1: 10}).latency_buckets is None
    assert ArmCounters(latency_buckets={0.1: math.nan, math.inf: 3}).latency_buckets is None


@pytest.mark.parametrize(
    ("buckets", "quantile", "expected"),
    [
        ({0.1: 50, 0.2: 100, math.inf: 100}, 0.5, 0.1),
        ({0.1: 50, 0.2: 100, math.inf: 100}, 0.75, 0.15),
        ({0.1: 50, 0.2: 90, math.inf: 100}, 0.95, math.inf),
        ({0.1: 60, 0.2: 50, math.inf: 100}, 0.5, 0.1 * 50 / 60),  # non-monotonic: made monotonic
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(buckets, quantile, expected):
    assert histogram_quantile(quantile, buckets) == pytest.approx(expected)


def test_histogram_quantile_of_an_empty_histogram_is_nan():
    assert math.isnan(histogram_quantile(0.95, {0.1: 0, math.inf: 0}))


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.15, Exceedance(30, 30)),
        (0.05, Exceedance(75, 75)),
        (0.5, Exceedance(0, 10)),  # beyond the last finite bucket: only bounds are known
    ],
)
def test_exceedance_counts_requests_above_a_threshold(threshold, expected):
    buckets = {0.1: 50, 0.2: 90, math.inf: 100}
    assert tuple(exceedance(buckets, threshold)) == pytest.approx(tuple(expected))
