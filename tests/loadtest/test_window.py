from __future__ import annotations

import pytest

from mlcanary.loadtest.window import Window, in_parallel, in_sequence


def test_percentiles_come_from_the_histogram() -> None:
    window = Window(
        duration_s=2.0, requests=100, failures=0, response_times={10: 90, 50: 9, 200: 1}
    )
    assert window.percentile_ms(0.50) == 10
    assert window.percentile_ms(0.95) == 50
    assert window.percentile_ms(0.99) == 50
    assert window.percentile_ms(1.0) == 200
    assert window.throughput_rps == 50


def test_an_empty_window_has_no_rate_or_latency() -> None:
    window = Window(duration_s=0.0, requests=0, failures=0)
    assert (window.throughput_rps, window.failure_ratio, window.percentile_ms(0.95)) == (0, 0, 0)


def test_windows_of_parallel_processes_add_up_rates_over_the_same_time() -> None:
    a = Window(2.0, 100, 1, {10: 100})
    b = Window(2.0, 60, 2, {10: 30, 30: 30})
    both = in_parallel([a, b])
    assert both.throughput_rps == 80
    assert both.failure_ratio == pytest.approx(3 / 160)
    assert both.response_times == {10: 130, 30: 30}


def test_consecutive_windows_add_up_time() -> None:
    a = Window(2.0, 100, 0, {10: 100})
    b = Window(2.0, 60, 0, {30: 60})
    assert in_sequence([a, b]).throughput_rps == 40
    assert in_sequence([a, b]).percentile_ms(0.95) == 30


def test_json_round_trip_keeps_the_histogram() -> None:
    window = Window(1.5, 7, 1, {3: 5, 12: 2})
    assert Window.from_json(window.to_json()) == window
