"""Error rates of the sequential tests under repeated looks, by seeded simulation.

Each simulation runs many streams at once, looks after every batch (one analysis interval) and
records whether a boundary was ever crossed. Tolerances are three binomial standard errors of the
simulated rate, so a correct test fails them about once in a thousand seeds; the seeds are fixed.
"""

import math

import numpy as np
import pytest

from mlcanary.rollout.sequential import (
    Moments,
    binomial_log_ratio,
    difference_sprt,
    gaussian_mixture_radius,
    mean_difference_sprt,
)

STREAMS = 4000
LOOKS = 60
CANARY_BATCH = 150  # labeled canary predictions per interval at a 10% step
STABLE_BATCH = 1350


def _tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / STREAMS)


Streams = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _accuracy_streams(seed: int, canary_accuracy: float, stable_accuracy: float = 0.9) -> Streams:
    """Cumulative correct labels and labels at each look: canary, then stable."""
    rng = np.random.default_rng(seed)
    kc = np.cumsum(rng.binomial(CANARY_BATCH, canary_accuracy, (STREAMS, LOOKS)), axis=1)
    ks = np.cumsum(rng.binomial(STABLE_BATCH, stable_accuracy, (STREAMS, LOOKS)), axis=1)
    looks = np.arange(1, LOOKS + 1)
    return kc, CANARY_BATCH * looks, ks, STABLE_BATCH * looks


def _first(crossed: np.ndarray) -> np.ndarray:
    """Index of each stream's first crossing, LOOKS if none."""
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1), LOOKS)


def _sprt_outcomes(
    seed: int, canary_accuracy: float, margin: float, alpha: float, beta: float
) -> tuple[float, float]:
    """Fractions of streams that roll back and that pass, whichever boundary comes first."""
    kc, nc, ks, ns = _accuracy_streams(seed, canary_accuracy)
    ratios = difference_sprt(kc, nc, ks, ns, margin)
    rollback = _first(ratios.rollback >= math.log(1 / alpha))
    accept = _first(ratios.accept <= math.log(beta))
    return float(np.mean(rollback < accept)), float(np.mean(accept < rollback))


@pytest.mark.parametrize(("seed", "alpha"), [(11, 0.05), (12, 0.01)])
def test_sprt_rolls_back_an_equal_canary_at_most_alpha_of_the_time(seed, alpha):
    rolled_back, _ = _sprt_outcomes(seed, 0.9, margin=0.03, alpha=alpha, beta=0.05)
    assert rolled_back <= alpha + _tolerance(alpha)


def test_repeated_fixed_sample_z_test_would_inflate_false_rollbacks():
    """The reason for the sequential test: the same streams, a 5% one-sided z-test at each look."""
    kc, nc, ks, ns = _accuracy_streams(11, 0.9)
    difference = kc / nc - ks / ns
    pooled = (kc + ks) / (nc + ns)
    z = difference / np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / ns))
    rejected = float(np.mean((z < -1.645).any(axis=1)))
    assert rejected > 3 * 0.05


@pytest.mark.parametrize(("seed", "beta"), [(21, 0.05), (22, 0.01)])
def test_sprt_passes_a_canary_worse_by_the_margin_at_most_beta_of_the_time(seed, beta):
    _, passed = _sprt_outcomes(seed, 0.87, margin=0.03, alpha=0.01, beta=beta)
    assert passed <= beta + _tolerance(beta)


def test_sprt_catches_a_three_point_drop_against_a_two_point_margin():
    rolled_back, passed = _sprt_outcomes(31, 0.87, margin=0.02, alpha=0.01, beta=0.01)
    assert passed < 0.002
    assert rolled_back > 0.99


def test_sprt_passes_an_equal_canary_within_the_horizon():
    rolled_back, passed = _sprt_outcomes(41, 0.9, margin=0.03, alpha=0.01, beta=0.01)
    assert passed > 0.99
    assert rolled_back < 0.01


def test_sprt_with_a_frozen_stable_arm_keeps_alpha():
    """The last step: stable's counts frozen from the previous step, canary at full traffic."""
    rng = np.random.default_rng(51)
    frozen_ks = rng.binomial(9 * 1350, 0.9, (STREAMS, 1))
    kc = np.cumsum(rng.binomial(1500, 0.9, (STREAMS, LOOKS)), axis=1)
    nc = 1500 * np.arange(1, LOOKS + 1)
    ratios = difference_sprt(kc, nc, frozen_ks, 9 * 1350, 0.03)
    rolled_back = _first(ratios.rollback >= math.log(1 / 0.05))
    accepted = _first(ratios.accept <= math.log(0.05))
    rate = float(np.mean(rolled_back < accepted))
    assert rate <= 0.05 + _tolerance(0.05)


def test_sprt_without_trials_has_no_evidence():
    ratios = difference_sprt(0, 0, 900, 1000, 0.02)
    assert float(ratios.rollback) == 0.0
    assert float(ratios.accept) == 0.0


@pytest.mark.parametrize("proportion", [0.05, 0.3])
def test_normal_mixture_sequence_covers_the_truth_at_every_look(proportion):
    alpha = 0.05
    rng = np.random.default_rng(61)
    n = 200 * np.arange(1, LOOKS + 1)
    k = np.cumsum(rng.binomial(200, proportion, (STREAMS, LOOKS)), axis=1)
    variance = proportion * (1 - proportion) / n
    radius = gaussian_mixture_radius(variance, alpha, scale=0.05)
    missed = float(np.mean((np.abs(k / n - proportion) > radius).any(axis=1)))
    assert missed <= alpha + _tolerance(alpha)


def test_normal_mixture_radius_shrinks_with_information_and_is_infinite_without():
    radius = gaussian_mixture_radius(np.array([np.inf, 1e-2, 1e-3, 1e-4]), 0.01, scale=0.05)
    assert np.isinf(radius[0])
    assert np.all(np.diff(radius[1:]) < 0)


@pytest.mark.parametrize(("proportion", "batch"), [(0.01, 300), (0.002, 3000)])
def test_beta_binomial_mixture_rejects_the_true_proportion_at_most_alpha(proportion, batch):
    """Exact even for rare events: 5xx at the limit, over many small looks."""
    alpha = 0.05
    rng = np.random.default_rng(71)
    k = np.cumsum(rng.binomial(batch, proportion, (STREAMS, LOOKS)), axis=1)
    n = batch * np.arange(1, LOOKS + 1)
    ratio = binomial_log_ratio(k, n, proportion, prior_mean=proportion)
    rejected = float(np.mean((ratio >= math.log(1 / alpha)).any(axis=1)))
    assert rejected <= alpha + _tolerance(alpha)


def test_beta_binomial_mixture_rejects_a_limit_far_from_the_data():
    assert binomial_log_ratio(0, 5000, 0.01, prior_mean=0.01) > math.log(100)
    assert binomial_log_ratio(200, 5000, 0.01, prior_mean=0.01) > math.log(100)
    assert binomial_log_ratio(50, 5000, 0.01, prior_mean=0.01) < 0


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10)])
def test_beta_binomial_mixture_with_a_uniform_prior_matches_its_closed_form(k, n):
    """With Beta(1, 1) the mixture likelihood is 1 / ((n + 1) C(n, k))."""
    p = 0.4
    expected = -math.log((n + 1) * math.comb(n, k)) - (k * math.log(p) + (n - k) * math.log(1 - p))
    assert float(binomial_log_ratio(k, n, p, prior_mean=0.5)) == pytest.approx(expected)


def _error_streams(
    seed: int, canary_scale: float, stable_scale: float = 10.0
) -> tuple[Moments, Moments]:
    """Cumulative count, sum and sum of squares of absolute errors at each look: half-normal
    errors (the absolute value of a normal error), canary then stable."""
    rng = np.random.default_rng(seed)
    moments = []
    for scale, batch in ((canary_scale, CANARY_BATCH), (stable_scale, STABLE_BATCH)):
        sums, squares = np.empty((STREAMS, LOOKS)), np.empty((STREAMS, LOOKS))
        for look in range(LOOKS):  # one look at a time keeps the draws to a few MB
            errors = np.abs(rng.normal(0.0, scale, (STREAMS, batch)))
            sums[:, look], squares[:, look] = errors.sum(axis=1), (errors**2).sum(axis=1)
        count = batch * np.arange(1, LOOKS + 1)
        moments.append(Moments(count, np.cumsum(sums, axis=1), np.cumsum(squares, axis=1)))
    return moments[0], moments[1]


def _error_outcomes(seed: int, canary_scale: float, increase: float) -> tuple[float, float]:
    canary, stable = _error_streams(seed, canary_scale)
    stable_mean = np.asarray(stable.total) / np.asarray(stable.n)
    ratios = mean_difference_sprt(canary, stable, increase * stable_mean)
    rollback = _first(ratios >= math.log(1 / 0.01))
    accept = _first(ratios <= math.log(0.01))
    return float(np.mean(rollback < accept)), float(np.mean(accept < rollback))


def test_the_error_sprt_rolls_back_an_equal_canary_at_most_alpha_of_the_time() -> None:
    rolled_back, passed = _error_outcomes(21, canary_scale=10.0, increase=0.05)
    assert rolled_back <= 0.01 + _tolerance(0.01)
    assert passed > 0.95  # and it decides, within the looks simulated


def test_the_error_sprt_passes_a_canary_worse_by_the_margin_at_most_beta_of_the_time() -> None:
    rolled_back, passed = _error_outcomes(22, canary_scale=10.5, increase=0.05)
    assert passed <= 0.01 + _tolerance(0.01)
    assert rolled_back > 0.95
