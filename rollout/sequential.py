"""Sequential tests that stay valid however often the controller looks at the data.

Why not a fixed-sample test: the controller re-reads Prometheus every interval and stops as soon
as the evidence is clear. A 1% z-test repeated at every look rolls back a healthy canary far more
often than 1% of the time (``tests/rollout/test_sequential.py`` measures it). Every boundary here
comes from a nonnegative (super)martingale under the hypothesis it guards, and Ville's inequality,
P(sup_t M_t >= 1/alpha) <= alpha, bounds the error at any stopping time: any number of looks, at
any times, stopping whenever the data look convincing.

Four tests, each where its assumptions fit:

* `difference_sprt`: Wald's sequential probability ratio test for canary accuracy minus stable
  accuracy. The spec names both hypotheses, H0 "the canary is no worse" (difference >= 0) and H1
  "the canary is worse by maxDrop or more" (difference <= -maxDrop), and for that problem the SPRT
  needs the fewest samples on average of all tests with the same error rates (Wald-Wolfowitz).
  Simulated at a 10% step against a normal-mixture confidence sequence with the same alpha and
  beta, it needed about 10% fewer labels with an equal canary and a third fewer with a canary
  worse by the margin. The
  likelihood ratio is monotone in the difference, so the bounds hold for the whole composite
  hypotheses, not only at their boundary points. Between 0 and -maxDrop either decision is
  acceptable; the test takes longest in the middle of that zone, and the deadline settles it.
* `mean_difference_sprt`: the same SPRT for a regressor's error, canary mean minus stable mean
  of a per-prediction error (absolute, or squared), H0 "no larger" (difference 0) against H1
  "larger by the margin". An error is no proportion, so its variance is the sample variance of
  each arm (from the sums of the errors and of their squares), under both hypotheses.
* `gaussian_mixture_radius`: the normal-mixture confidence sequence of Robbins, the one behind the
  mixture SPRT of Johari, Pekelis and Walsh ("Always valid inference", 2017), for the latency
  test: which side of a bound the fraction of slow requests lies on. It needs no point
  alternative, and there is none to give: a slowdown moves that fraction by an amount that
  depends on the unknown shape of the latency distribution.
* `binomial_log_ratio`: Robbins' beta-binomial mixture for one proportion against an
  absolute limit (5xx rate against errorRate.max, exceedances against latency.maxMs). It is exact,
  with no normal approximation, which matters for rare events such as 0.1% server errors.

The Gaussian approximation: an estimated difference d_t has variance
V_t = s_c^2/n_c(t) + s_s^2/n_s(t). For any non-decreasing sample counts, including a stable arm
frozen at an earlier step's counts while the canary takes all traffic, Cov(d_s, d_t) = V_t for
s <= t: the covariance of B(I)/I for a Brownian motion B in "information time" I = 1/V. So
Z = I * d is a Brownian motion whose drift is the true difference, whatever the traffic split,
and the SPRT and the mixture are martingale tests on it. The variances are estimated, so the
guarantee is asymptotic (Waudby-Smith et al., "Time-uniform central limit theory and asymptotic
confidence sequences", 2021); that is why the engine waits for minSamples before testing, and
why each variance gets one pseudo-success and one pseudo-failure (Agresti-Caffo): an all-correct
first batch must not claim a variance of zero.

The functions take and return numpy arrays so that the simulations in the tests and benchmark can
run thousands of streams at once; the engine calls them with scalars.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "LogLikelihoodRatios",
    "Moments",
    "binomial_log_ratio",
    "difference_sprt",
    "gaussian_mixture_radius",
    "mean_difference_sprt",
]

FloatArray = npt.NDArray[np.float64]


class LogLikelihoodRatios(NamedTuple):
    """The SPRT statistic computed with each hypothesis's own variance.

    A binomial's variance moves with its mean, so a single plug-in variance is smallest exactly
    when the canary looks best, which lets a bad canary pass more often than beta (1.2% instead of
    1% in a simulation at the H1 boundary). Each decision therefore uses the variance that holds
    under the hypothesis whose error it bounds, as a score test does.
    """

    rollback: FloatArray  # variance under H0 (no regression); roll back once >= log(1/alpha)
    accept: FloatArray  # variance under H1 (regression of `margin`); pass once <= log(beta)


def _variance(proportion: FloatArray, trials: FloatArray) -> FloatArray:
    """Variance of a sample proportion; inf for zero trials, so an empty arm proves nothing."""
    p = np.clip(proportion, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(trials > 0, p * (1.0 - p) / trials, np.inf)


def difference_sprt(
    canary_successes: npt.ArrayLike,
    canary_trials: npt.ArrayLike,
    stable_successes: npt.ArrayLike,
    stable_trials: npt.ArrayLike,
    margin: float,
) -> LogLikelihoodRatios:
    """Wald's SPRT of "canary proportion - stable proportion = -margin" (H1) against "= 0" (H0).

    Under H0 the variance uses the pooled proportion, under H1 the stable proportion and the
    stable proportion minus `margin` for the canary; both get one pseudo-success and one
    pseudo-failure. Under H0, exp(rollback) is a martingale in information time, so Ville's
    inequality gives P(ever >= 1/alpha) <= alpha; under H1 exp(-accept) is one, and
    P(ever <= beta) <= beta.
    """
    kc = np.asarray(canary_successes, dtype=np.float64)
    nc = np.asarray(canary_trials, dtype=np.float64)
    ks = np.asarray(stable_successes, dtype=np.float64)
    ns = np.asarray(stable_trials, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = np.nan_to_num(kc / nc - ks / ns)
    pooled = (kc + ks + 1.0) / (nc + ns + 2.0)
    stable = (ks + 1.0) / (ns + 2.0)
    variance_null = _variance(pooled, nc) + _variance(pooled, ns)
    variance_alternative = _variance(stable - margin, nc) + _variance(stable, ns)
    # log N(d; -margin, V) - log N(d; 0, V) = -margin * (d + margin / 2) / V
    slope = -margin * (difference + margin / 2.0)
    return LogLikelihoodRatios(slope / variance_null, slope / variance_alternative)


class Moments(NamedTuple):
    """One arm's values summarised: how many, their sum, and the sum of their squares."""

    n: npt.ArrayLike
    total: npt.ArrayLike
    squares: npt.ArrayLike

    def mean_and_variance(self) -> tuple[FloatArray, FloatArray]:
        """The mean, and the variance of that mean (the sample variance over the count); an
        arm of fewer than two values has an infinite variance: it proves nothing."""
        n = np.asarray(self.n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.asarray(self.total, dtype=np.float64) / n
            spread = np.asarray(self.squares, dtype=np.float64) / n - mean * mean
            variance = np.where(n > 1, np.maximum(spread, 0.0) / (n - 1), np.inf)
        return np.nan_to_num(mean), variance


def mean_difference_sprt(canary: Moments, stable: Moments, margin: npt.ArrayLike) -> FloatArray:
    """Log-likelihood ratio of "canary mean - stable mean = margin" (H1) against "= 0" (H0).

    Roll back once the ratio reaches log(1/alpha), pass once it falls to log(beta): under H0
    exp(ratio) is a martingale in information time, under H1 exp(-ratio) is one, as for
    `difference_sprt`. With no evidence (an arm without variance) the ratio is 0.
    """
    canary_mean, canary_variance = canary.mean_and_variance()
    stable_mean, stable_variance = stable.mean_and_variance()
    delta = np.asarray(margin, dtype=np.float64)
    variance = canary_variance + stable_variance
    slope = delta * (canary_mean - stable_mean - delta / 2.0)
    usable = np.isfinite(variance) & (variance > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(usable, slope / variance, 0.0), dtype=np.float64)


def gaussian_mixture_radius(variance: npt.ArrayLike, alpha: float, scale: float) -> FloatArray:
    """Half-width of the normal-mixture confidence sequence at level 1 - alpha.

    `scale` is the mixing standard deviation: the sequence is tightest when the radius is about
    the size of `scale`, so pass the size of the effect that matters for the decision.
    """
    v = np.asarray(variance, dtype=np.float64)
    tau2 = scale * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + np.log1p(tau2 / v)))
    return np.where(np.isfinite(v), radius, np.inf)


def _log_gamma(values: FloatArray) -> FloatArray:
    flat = np.fromiter((math.lgamma(x) for x in values.ravel()), np.float64, count=values.size)
    return flat.reshape(values.shape)


def binomial_log_ratio(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    proportion: float,
    prior_mean: float,
) -> FloatArray:
    """Log of Robbins' beta-binomial mixture likelihood ratio against "the proportion is
    `proportion`".

    Under that hypothesis its exponential is a martingale, so P(ever >= 1/alpha) <= alpha. The
    proportions where it stays below 1/alpha form a confidence sequence, an interval around the
    sample proportion (the ratio is convex in the proportion and at most 1 at the sample
    proportion). A limit outside it on the side of the sample proportion is therefore rejected
    together with everything beyond it: "above the limit" is shown with error at most alpha
    whatever the true proportion below the limit is, and "below the limit" likewise.

    The mixture is Beta(1, (1 - m) / m) with m = `prior_mean`: with m at the limit being tested,
    the prior's mass lies between 0 and a few times the limit, where the evidence about a 1%
    error budget is, instead of being spread over [0, 1] and wasted. Successes may be fractional
    (an exceedance count interpolated inside a histogram bucket).
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    a = 1.0
    b = (1.0 - prior_mean) / prior_mean
    log_mixture = (_log_gamma(a + k) + _log_gamma(b + n - k) - _log_gamma(a + b + n)) - (
        math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    )
    log_likelihood = k * math.log(proportion) + (n - k) * math.log1p(-proportion)
    return np.asarray(log_mixture - log_likelihood, dtype=np.float64)
