from __future__ import annotations

import pytest

from mlcanary.loadtest.stability import StabilityRule, is_stable, latency_rising
from mlcanary.loadtest.window import Window

RULE = StabilityRule(windows=3, tolerance=0.10, latency_floor_ms=2.0)


def windows(*pairs: tuple[float, int]) -> list[Window]:
    """One 1-second window per (requests, p95 ms) pair, every request at that latency."""
    return [Window(1.0, int(n), 0, {p95: int(n)}) for n, p95 in pairs]


@pytest.mark.parametrize(
    ("series", "stable"),
    [
        ([(100, 20), (100, 20), (100, 20)], True),
        ([(50, 90), (100, 20), (104, 21), (97, 20)], True),  # the warm-up is not in the last three
        ([(100, 20), (100, 20)], False),  # too few windows
        ([(100, 20), (100, 20), (130, 20)], False),  # throughput off by more than 10%
        ([(100, 20), (100, 20), (100, 30)], False),  # p95 off by more than 10%
        ([(100, 3), (100, 4), (100, 5)], True),  # within the 2 ms resolution floor
    ],
)
def test_stability_needs_the_last_windows_to_agree(series, stable) -> None:
    assert is_stable(windows(*series), RULE) is stable


def test_a_climbing_latency_is_a_queue_building() -> None:
    assert latency_rising(windows((100, 20), (100, 40), (100, 80)), RULE)
    assert not latency_rising(windows((100, 20), (100, 21), (100, 21)), RULE)
    assert not latency_rising(windows((100, 80), (100, 40), (100, 20)), RULE)


def test_a_tail_climbing_alone_is_noise() -> None:
    """The median stays at 6 ms while a few slow requests move the p95."""
    tail = [Window(1.0, 10, 0, {6: 9, slow: 1}) for slow in (7, 9, 14)]
    assert [w.percentile_ms(0.95) for w in tail] == [7, 9, 14]
    assert not latency_rising(tail, RULE)


@pytest.mark.parametrize(
    ("field", "kwargs"), [("windows", {"windows": 1}), ("tolerance", {"tolerance": 0})]
)
def test_bad_rules_are_refused_naming_the_field(field, kwargs) -> None:
    with pytest.raises(ValueError, match=field):
        StabilityRule(**kwargs)
