"""The shadow step: the canary answers copies of real requests, unseen, and its answers are
judged against stable's on the same requests before any client gets one.

Why this is the first evidence to look at: it needs no label and arrives within seconds of real
traffic at zero exposure, and it catches the common release bugs (a broken preprocessing step,
swapped columns, a wrong class order, a model trained on the wrong target) before a weighted
step shows them to anyone. The stable servers count the comparisons per version pair
(`mlcanary.serving.shadow`); the metrics providers read them into the canary's counters
(``shadow_*`` in `ArmCounters`), windowed per step like every other count.

The checks, each a plain bound tested sequentially with the rollout's alpha and beta, valid at
every look like the other checks (`mlcanary.rollout.sequential`):

* agreement, for a classifier: the share of rows on which the canary's class is stable's,
  against ``minAgreement``. A proportion against a bound, so the exact beta-binomial mixture
  that judges errorRate (`checks.against_limit`) applies unchanged to the share that disagreed.
* difference, for a regressor: the mean absolute difference between the two predictions,
  against ``maxMeanDifference``, with the normal-mixture confidence sequence of the latency
  test on the differences' sample mean and variance. One pseudo-difference at 0 and one at twice
  the bound (mean: the bound) are added, as Agresti-Caffo add a pseudo-success and a
  pseudo-failure to a proportion: a canary whose first hundreds of answers all equal stable's
  would otherwise claim a variance of zero. The variance is estimated, so the guarantee is
  asymptotic, as for the other mean tests; minSamples applies.

Which checks a step runs (`step_checks`): at a shadow step the canary answers no client, so no
label can reach it: the label-based checks (accuracy, error) wait for the weighted steps, and
the shadow check takes their place. Latency and errorRate judge the canary on the copies it
answered, as at any step. alpha is split evenly over every test that can fire in the whole
rollout, the shadow step's and each weighted step's, so the Bonferroni bound of `checks` holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial

import numpy as np
import numpy.typing as npt

from mlcanary.rollout.checks import (
    Assessment,
    ErrorBudget,
    Seen,
    against_limit,
    enabled_checks,
    reason_for,
)
from mlcanary.rollout.mirror.base import MirrorTarget
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.sequential import Moments, gaussian_mixture_radius
from mlcanary.rollout.spec import SHADOW, AnalysisSpec, ModelRollout, RolloutSpec, ShadowCheck
from mlcanary.rollout.status import Phase, Reason, RolloutStatus, Verdict
from mlcanary.rollout.timeline import ShadowSnapshot

__all__ = [
    "AGREEMENT",
    "DIFFERENCE",
    "LABELED_CHECKS",
    "assess_agreement",
    "assess_difference",
    "difference_crossings",
    "flip",
    "mirror_target",
    "shadow_checks",
    "shadow_snapshot",
    "shadow_task_problems",
    "step_checks",
    "top_flips",
]

AGREEMENT = "agreement"
DIFFERENCE = "difference"
LABELED_CHECKS = frozenset({"accuracy", "error"})  # they need labels, which copies never get
_SHOWN_FLIPS = 3

BoolArray = npt.NDArray[np.bool_]


def flip(stable_class: str, canary_class: str) -> str:
    """The key of one cell of the flip matrix in `ArmCounters.shadow_flips`."""
    return f"{stable_class}\u2192{canary_class}"


def top_flips(
    flips: Mapping[str, float] | None, count: int = _SHOWN_FLIPS
) -> list[tuple[str, float]]:
    """The most frequent flips ("stable class→canary class"), most first."""
    counted = [(pair, n) for pair, n in (flips or {}).items() if n > 0]
    return sorted(counted, key=lambda item: (-item[1], item[0]))[:count]


def _lost(canary: ArmCounters) -> str:
    lost = canary.shadow_lost or 0.0
    return f" ({lost:.0f} copies lost: dropped, timed out or failed)" if lost else ""


def assess_agreement(
    check: ShadowCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The share of compared rows on which the canary agreed with stable, against
    ``minAgreement``: its disagreeing share against 1 - minAgreement, by the beta-binomial
    mixture (exact, any number of looks)."""
    if check.min_agreement is None:
        raise ValueError("analysis.shadow.minAgreement is not set: there is no bound to assess")
    bound = check.min_agreement
    limit = 1 - bound
    rule = (
        f"the canary must agree with stable on at least {bound:.1%} of the rows both answered: "
        f"at most {limit:.1%} disagreeing"
    )
    agreed, disagreed = canary.shadow_agreed, canary.shadow_disagreed
    if agreed is None or disagreed is None:
        message = "no comparisons counted yet"
        return reason_for(AGREEMENT, Verdict.INCONCLUSIVE, rule, message, Seen(None, None, bound))
    compared = agreed + disagreed
    seen = Seen(agreed / compared if compared else None, None, bound)
    if compared < budget.min_samples:
        message = f"{compared:.0f} rows compared{_lost(canary)}: {budget.min_samples} needed"
        return reason_for(AGREEMENT, Verdict.INCONCLUSIVE, rule, message, seen)
    verdict = against_limit(disagreed, disagreed, compared, limit, budget)
    outcome = {
        Verdict.FAIL: "significantly below the bound",
        Verdict.PASS: "above the bound",
        Verdict.INCONCLUSIVE: "not conclusive yet",
    }[verdict]
    flips = ", ".join(f"{pair} x{n:.0f}" for pair, n in top_flips(canary.shadow_flips))
    message = (
        f"canary agreed with stable on {agreed / compared:.2%} of {compared:.0f} rows"
        f"{_lost(canary)}: {outcome}"
        + (f"; most flips (stable\u2192canary): {flips}" if flips else "")
    )
    return reason_for(AGREEMENT, verdict, rule, message, seen)


def difference_crossings(
    differences: Moments, bound: float, alpha: float, beta: float
) -> tuple[BoolArray, BoolArray]:
    """Whether the mean absolute difference is shown above ``bound`` (with error at most
    alpha) and below it (at most beta), from the differences' count, sum and sum of squares
    with the two pseudo-differences added. Arrays in, arrays out, for the simulations."""
    padded = Moments(
        np.asarray(differences.n, dtype=np.float64) + 2,
        np.asarray(differences.total, dtype=np.float64) + 2 * bound,
        np.asarray(differences.squares, dtype=np.float64) + 4 * bound * bound,
    )
    mean, variance = padded.mean_and_variance()
    above = mean - bound > gaussian_mixture_radius(variance, alpha, bound)
    below = bound - mean > gaussian_mixture_radius(variance, beta, bound)
    return above, below


def assess_difference(
    check: ShadowCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The mean absolute difference between the canary's and stable's predictions against
    ``maxMeanDifference``, with the normal-mixture confidence sequence (see the module's
    docstring for the two pseudo-differences)."""
    if check.max_mean_difference is None:
        raise ValueError("analysis.shadow.maxMeanDifference is not set: no bound to assess")
    bound = check.max_mean_difference
    rule = f"the mean absolute difference from stable's predictions must stay under {bound:g}"
    count = canary.shadow_measured
    total, squares = canary.shadow_difference_sum, canary.shadow_difference_squares_sum
    if count is None or total is None or squares is None:
        message = "no comparisons counted yet"
        return reason_for(DIFFERENCE, Verdict.INCONCLUSIVE, rule, message, Seen(None, None, bound))
    seen = Seen(total / count if count else None, None, bound)
    if count < budget.min_samples:
        message = f"{count:.0f} rows compared{_lost(canary)}: {budget.min_samples} needed"
        return reason_for(DIFFERENCE, Verdict.INCONCLUSIVE, rule, message, seen)
    above, below = difference_crossings(
        Moments(count, total, squares), bound, budget.alpha, budget.beta
    )
    if bool(above):
        verdict, outcome = Verdict.FAIL, "significantly above the bound"
    elif bool(below):
        verdict, outcome = Verdict.PASS, "under the bound"
    else:
        verdict, outcome = Verdict.INCONCLUSIVE, "not conclusive yet"
    message = (
        f"mean absolute difference {total / count:.4g} over {count:.0f} rows{_lost(canary)}: "
        f"{outcome}"
    )
    return reason_for(DIFFERENCE, verdict, rule, message, seen)


def shadow_checks(analysis: AnalysisSpec) -> list[tuple[str, Assessment]]:
    """The checks of a shadow step: the comparison, and the rollout's checks that need no
    label (latency, errorRate) on the copies the canary answered."""
    check = analysis.shadow
    if check is None:
        return []
    compared: tuple[str, Assessment] = (
        (AGREEMENT, partial(assess_agreement, check))
        if check.min_agreement is not None
        else (DIFFERENCE, partial(assess_difference, check))
    )
    unlabeled = [(m, a) for m, a in enabled_checks(analysis) if m not in LABELED_CHECKS]
    return [compared, *unlabeled]


def step_checks(spec: RolloutSpec, index: int) -> tuple[list[tuple[str, Assessment]], ErrorBudget]:
    """The checks of step ``index``, and each test's share of alpha over the whole rollout."""
    analysis = spec.analysis
    weighted, shadowed = enabled_checks(analysis), shadow_checks(analysis)
    shadows = sum(step == SHADOW for step in spec.steps)
    tests = shadows * len(shadowed) + (len(spec.steps) - shadows) * len(weighted)
    budget = ErrorBudget(analysis.alpha / max(tests, 1), analysis.beta, analysis.min_samples)
    return (shadowed if spec.steps[index] == SHADOW else weighted), budget


def mirror_target(
    rollout: ModelRollout, status: RolloutStatus, backends: Mapping[str, str]
) -> MirrorTarget | None:
    """What stable's servers should copy now: during the shadow step of an active rollout of
    these versions, once the canary is served; nothing otherwise."""
    spec = rollout.spec
    canary = spec.canary.version
    active = status.phase in {Phase.PROGRESSING, Phase.PAUSED} and (
        status.stable_version,
        status.canary_version,
    ) == (spec.stable.version, canary)
    at_shadow = status.step_index < len(spec.steps) and spec.steps[status.step_index] == SHADOW
    if not (active and at_shadow and spec.analysis.shadow is not None and canary in backends):
        return None
    return MirrorTarget(
        stable=spec.stable.version,
        canary=canary,
        backend=backends[canary],
        fraction=spec.analysis.shadow.fraction,
    )


def shadow_snapshot(canary: ArmCounters) -> ShadowSnapshot | None:
    """The step's comparison figures for the timeline; None when nothing was compared."""
    agreed, disagreed = canary.shadow_agreed or 0.0, canary.shadow_disagreed or 0.0
    measured = canary.shadow_measured or 0.0
    if agreed + disagreed == 0 and measured == 0:
        return None
    mean = (canary.shadow_difference_sum or 0.0) / measured if measured else None
    return ShadowSnapshot(
        compared=agreed + disagreed + measured,
        agreement=agreed / (agreed + disagreed) if agreed + disagreed else None,
        mean_difference=mean if mean is not None and math.isfinite(mean) else None,
        lost=canary.shadow_lost or 0.0,
        top_flips=dict(top_flips(canary.shadow_flips)),
    )


def shadow_task_problems(analysis: AnalysisSpec, task: str) -> list[tuple[str, str]]:
    """Whether the shadow check fits the model's task: agreement compares a classifier's
    classes, the mean difference a regressor's numbers."""
    check = analysis.shadow
    if check is None:
        return []
    if task == "regression" and check.min_agreement is not None:
        problem = "the model is a regressor: bound its maxMeanDifference instead"
        return [("spec.analysis.shadow.minAgreement", problem)]
    if task == "classification" and check.max_mean_difference is not None:
        problem = "the model is a classifier: bound its minAgreement instead"
        return [("spec.analysis.shadow.maxMeanDifference", problem)]
    return []
