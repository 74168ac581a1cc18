from __future__ import annotations

import itertools
from collections import Counter

import pytest

from mlcanary.local.router.state import ActiveRoutes, SmoothWeightedPicker
from mlcanary.rollout.routers import Route, RouteTable


def _routes(*weights: int) -> tuple[Route, ...]:
    return tuple(Route(f"v{i}", f"http://127.0.0.1:{3000 + i}", w) for i, w in enumerate(weights))


@pytest.mark.parametrize(
    "weights", [(100, 0), (90, 10), (50, 50), (1, 99), (0, 100), (50, 30, 20), (33, 33, 34)]
)
def test_the_split_over_10000_picks_is_exact(weights: tuple[int, ...]) -> None:
    picker = SmoothWeightedPicker(_routes(*weights))
    counts = Counter(picker.pick().version for _ in range(10_000))
    assert counts == Counter({f"v{i}": w * 100 for i, w in enumerate(weights) if w})


@pytest.mark.parametrize("canary", range(0, 101, 5))
def test_two_routes_stay_within_one_pick_of_their_share_at_every_count(canary: int) -> None:
    picker = SmoothWeightedPicker(_routes(100 - canary, canary))
    seen = 0
    for n in range(1, 1001):
        seen += picker.pick().version == "v1"
        assert abs(seen - n * canary / 100) <= 1, f"after {n} picks"


def test_a_ten_percent_canary_gets_every_tenth_request() -> None:
    picker = SmoothWeightedPicker(_routes(90, 10))
    positions = [n for n in range(1000) if picker.pick().version == "v1"]
    assert len(positions) == 100
    assert {b - a for a, b in itertools.pairwise(positions)} == {10}


def test_feedback_fallback_is_the_heaviest_route_first_on_ties() -> None:
    assert ActiveRoutes(RouteTable(_routes(20, 40, 40))).heaviest().version == "v1"
    assert ActiveRoutes(RouteTable(_routes(60, 40))).heaviest().version == "v0"
