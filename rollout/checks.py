"""The statistical checks of a step, each a pure function of the step's counts.

Why apart from the state machine (`engine`): these are the statistics — which test, which
boundary, which error budget — and they are table-tested on counts alone; the engine only
combines their verdicts into an action. Adding a check means one ``assess_*`` function, one line
in `enabled_checks` and the inputs it reads in ``_INPUTS``.

The error budget: ``alpha`` is split evenly over every rollback test that can fire (each enabled
check at each step, a Bonferroni bound), so a canary no worse than stable is rolled back with
probability at most alpha over the whole rollout. ``beta`` is not split: promotion needs every
check to pass at the last step, so a canary that regressed on any one check is promoted with
probability at most beta.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from pydantic.alias_generators import to_camel

from mlcanary.rollout.observations import (
    ArmCounters,
    Observation,
    exceedance,
    histogram_quantile,
)
from mlcanary.rollout.sequential import (
    Moments,
    binomial_log_ratio,
    difference_sprt,
    gaussian_mixture_radius,
    mean_difference_sprt,
)
from mlcanary.rollout.spec import (
    AccuracyCheck,
    AnalysisSpec,
    ErrorCheck,
    ErrorRateCheck,
    LatencyCheck,
)
from mlcanary.rollout.status import Reason, Verdict

__all__ = [
    "Assessment",
    "ErrorBudget",
    "Seen",
    "against_limit",
    "assess_accuracy",
    "assess_error",
    "assess_error_rate",
    "assess_latency",
    "assess_latency_max",
    "enabled_checks",
    "error_budget",
    "failed_queries",
    "reason_for",
    "task_problems",
    "unless_missing",
]


@dataclass(frozen=True)
class ErrorBudget:
    """Error rates for one check's tests at one step, and the samples each test needs first."""

    alpha: float  # this test's share of the rollout's false-rollback probability
    beta: float  # false-pass probability of a canary at the regression the check guards against
    min_samples: int


def error_budget(analysis: AnalysisSpec, steps: int) -> ErrorBudget:
    """Each check at each step gets an equal share of alpha."""
    tests = max(steps * len(enabled_checks(analysis)), 1)  # at least 1: only metric checks
    return ErrorBudget(analysis.alpha / tests, analysis.beta, analysis.min_samples)


class Seen(NamedTuple):
    canary: float | None = None
    stable: float | None = None
    threshold: float | None = None


def reason_for(metric: str, verdict: Verdict, rule: str, message: str, seen: Seen) -> Reason:
    return Reason(
        metric=metric,
        verdict=verdict,
        canary=seen.canary,
        stable=seen.stable,
        threshold=seen.threshold,
        rule=rule,
        message=message,
    )


def _percentile(quantile: float) -> str:
    return f"p{quantile * 100:g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def assess_accuracy(
    check: AccuracyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """Wald's SPRT of canary minus stable accuracy: 0 (no regression) against -maxDrop."""
    fail_at, pass_at = math.log(1 / budget.alpha), math.log(budget.beta)
    rule = (
        f"SPRT of canary minus stable accuracy, 0 against -{check.max_drop:g}: roll back at a "
        f"log-likelihood ratio >= {fail_at:.2f}, pass at <= {pass_at:.2f}"
    )
    counts = [
        (arm.feedback_correct, arm.feedback_incorrect)
        for arm in (canary, stable)
        if arm.feedback_correct is not None and arm.feedback_incorrect is not None
    ]
    if len(counts) < 2:
        message = "no feedback counts yet for both versions"
        return reason_for("accuracy", Verdict.INCONCLUSIVE, rule, message, Seen())
    (kc, wrong_c), (ks, wrong_s) = counts
    nc, ns = kc + wrong_c, ks + wrong_s
    seen = Seen(
        kc / nc if nc else None,
        ks / ns if ns else None,
        ks / ns - check.max_drop if ns else None,
    )
    if min(nc, ns) < budget.min_samples:
        message = (
            f"{nc:.0f} labeled canary and {ns:.0f} stable predictions: "
            f"{budget.min_samples} of each needed"
        )
        return reason_for("accuracy", Verdict.INCONCLUSIVE, rule, message, seen)
    ratios = difference_sprt(kc, nc, ks, ns, check.max_drop)
    rollback, accept = float(ratios.rollback), float(ratios.accept)
    counted = f"canary {kc / nc:.2%} against stable {ks / ns:.2%} on {nc:.0f}/{ns:.0f} labels"
    if rollback >= fail_at:
        verdict = Verdict.FAIL
        message = f"{counted}: significantly lower (ratio {rollback:.2f} >= {fail_at:.2f})"
    elif accept <= pass_at:
        verdict = Verdict.PASS
        message = f"{counted}: no drop of {check.max_drop:g} or more (ratio {accept:.2f})"
    else:
        verdict = Verdict.INCONCLUSIVE
        message = f"{counted}: not conclusive yet (ratios {rollback:.2f} and {accept:.2f})"
    return reason_for("accuracy", verdict, rule, message, seen)


def _error_sums(arm: ArmCounters, metric: str) -> tuple[float, float, float] | None:
    """An arm's count, sum and sum of squares of per-prediction errors, as the test takes them:
    absolute errors for MAE, squared errors for RMSE (its test runs on the mean squared error,
    which orders versions alike and is what the service's sums give)."""
    if metric == "rmse":
        sums = (arm.feedback_measured, arm.squared_error_sum, arm.squared_error_squares_sum)
    else:
        sums = (arm.feedback_measured, arm.absolute_error_sum, arm.squared_error_sum)
    count, total, squares = sums
    if count is None or total is None or squares is None:
        return None
    return count, total, squares


def assess_error(
    check: ErrorCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """A regressor's error: SPRT of canary minus stable mean error, 0 (no increase) against
    maxIncrease times stable's. For RMSE the test runs on the mean squared error, whose relative
    margin is (1 + maxIncrease)^2 - 1; values are reported as MAE or RMSE.

    Like accuracy, an indifference zone lies between no increase and maxIncrease: either decision
    may be taken there, and a canary worse by maxIncrease or more is promoted with probability at
    most beta, however often the data are looked at.
    """
    fail_at, pass_at = math.log(1 / budget.alpha), math.log(budget.beta)
    name = check.metric.upper()
    rule = (
        f"SPRT of canary minus stable {name}, 0 against +{check.max_increase:.0%}: roll back at "
        f"a log-likelihood ratio >= {fail_at:.2f}, pass at <= {pass_at:.2f}"
    )
    canary_sums, stable_sums = _error_sums(canary, check.metric), _error_sums(stable, check.metric)
    if canary_sums is None or stable_sums is None:
        message = "no error sums yet for both versions"
        return reason_for("error", Verdict.INCONCLUSIVE, rule, message, Seen())

    def shown(sums: tuple[float, float, float]) -> float | None:
        count, total, _ = sums
        if not count:
            return None
        return math.sqrt(total / count) if check.metric == "rmse" else total / count

    canary_value, stable_value = shown(canary_sums), shown(stable_sums)
    limit = stable_value * (1 + check.max_increase) if stable_value is not None else None
    seen = Seen(canary_value, stable_value, limit)
    nc, ns = canary_sums[0], stable_sums[0]
    if canary_value is None or stable_value is None or min(nc, ns) < budget.min_samples:
        message = (
            f"{nc:.0f} labeled canary and {ns:.0f} stable predictions: "
            f"{budget.min_samples} of each needed"
        )
        return reason_for("error", Verdict.INCONCLUSIVE, rule, message, seen)
    relative = (1 + check.max_increase) ** 2 - 1 if check.metric == "rmse" else check.max_increase
    margin = relative * stable_sums[1] / ns
    ratio = float(mean_difference_sprt(Moments(*canary_sums), Moments(*stable_sums), margin))
    counted = (
        f"{name} canary {canary_value:.4g} against stable {stable_value:.4g} "
        f"on {nc:.0f}/{ns:.0f} labels"
    )
    if ratio >= fail_at:
        verdict, outcome = Verdict.FAIL, f"significantly higher (ratio {ratio:.2f})"
    elif ratio <= pass_at:
        verdict = Verdict.PASS
        outcome = f"no increase of {check.max_increase:.0%} or more (ratio {ratio:.2f})"
    else:
        verdict, outcome = Verdict.INCONCLUSIVE, f"not conclusive yet (ratio {ratio:.2f})"
    return reason_for("error", verdict, rule, f"{counted}: {outcome}", seen)


def assess_latency(
    check: LatencyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's latency quantile against maxRatio times stable's, as a proportion.

    With L = maxRatio times stable's quantile q, the canary is within bound exactly when at most
    1 - q of its requests take longer than L: counting requests above a threshold turns a ratio of
    quantiles into a proportion, which the normal-mixture confidence sequence handles. Its
    variance is the one at the bound, q(1-q)(1/n_canary + 1/n_stable); the second term is the
    error of L itself, estimated from stable's histogram (Bahadur's representation of a sample
    quantile, exact when a slower canary is a stretched stable, every request slowed alike).

    Unlike accuracy, latency gets a single boundary at maxRatio rather than an indifference zone
    below it: requests are plentiful, so the test can afford to resolve slowdowns close to the
    bound, and a canary a few percent slower than stable, which is common and harmless, is never
    the one it is built to catch.
    """
    q, tail = check.quantile, 1 - check.quantile
    name = _percentile(q)
    rule = (
        f"the canary's {name} must stay under {check.max_ratio:g} x stable's: "
        f"at most {tail:.1%} of canary requests above that bound"
    )
    hc, hs = canary.latency_buckets, stable.latency_buckets
    if hc is None or hs is None:
        message = "no latency histogram yet for both versions"
        return reason_for("latency", Verdict.INCONCLUSIVE, rule, message, Seen())
    nc, ns = hc[math.inf], hs[math.inf]
    canary_q = histogram_quantile(q, hc) if nc else None
    stable_q = histogram_quantile(q, hs) if ns else None
    limit = stable_q * check.max_ratio if stable_q is not None else None
    seen = Seen(canary_q, stable_q, limit)
    if canary_q is None or limit is None or min(nc, ns) < budget.min_samples:
        message = (
            f"{nc:.0f} canary and {ns:.0f} stable requests timed: "
            f"{budget.min_samples} of each needed"
        )
        return reason_for("latency", Verdict.INCONCLUSIVE, rule, message, seen)
    if math.isinf(limit):
        message = f"stable's {name} lies above the histogram's largest finite bucket"
        return reason_for("latency", Verdict.INCONCLUSIVE, rule, message, seen)
    variance = q * tail * (1 / nc + 1 / ns)
    above = exceedance(hc, limit)
    counted = (
        f"{name} canary {_ms(canary_q)} against stable {_ms(limit / check.max_ratio)}: "
        f"{above.high / nc:.1%} of canary requests above {_ms(limit)}"
    )
    if above.low / nc - tail > float(gaussian_mixture_radius(variance, budget.alpha, tail)):
        verdict = Verdict.FAIL
    elif above.high / nc - tail < -float(gaussian_mixture_radius(variance, budget.beta, tail)):
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return reason_for("latency", verdict, rule, f"{counted}: {_OUTCOMES[verdict]}", seen)


_OUTCOMES = {
    Verdict.FAIL: "significantly over the limit",
    Verdict.PASS: "under the limit",
    Verdict.INCONCLUSIVE: "not conclusive yet",
}


def against_limit(
    low: float, high: float, trials: float, limit: float, budget: ErrorBudget
) -> Verdict:
    """A proportion against an absolute limit with the beta-binomial mixture; `low` and `high`
    are the counts to use for failing and for passing (see `Exceedance`)."""
    if low > limit * trials and binomial_log_ratio(low, trials, limit, limit) >= math.log(
        1 / budget.alpha
    ):
        return Verdict.FAIL
    if high < limit * trials and binomial_log_ratio(high, trials, limit, limit) >= math.log(
        1 / budget.beta
    ):
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def assess_latency_max(
    check: LatencyCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's quantile against the absolute bound maxMs, through its exceedance count.

    A threshold beyond the histogram's last finite bucket counts the whole +Inf bucket as above
    it for passing and nothing for failing: the histogram cannot tell, and doubt must not pass.
    """
    q, tail = check.quantile, 1 - check.quantile
    name = _percentile(q)
    if check.max_ms is None:
        raise ValueError("latency.maxMs is not set: there is no absolute bound to assess")
    limit = check.max_ms / 1000
    rule = f"the canary's {name} must stay under {_ms(limit)}: at most {tail:.1%} of requests above"
    hc, hs = canary.latency_buckets, stable.latency_buckets
    stable_q = histogram_quantile(q, hs) if hs and hs[math.inf] else None
    timed = hc[math.inf] if hc else 0.0
    if hc is None or timed < budget.min_samples:
        message = f"{timed:.0f} canary requests timed: {budget.min_samples} needed"
        return reason_for(
            "latency-max", Verdict.INCONCLUSIVE, rule, message, Seen(None, stable_q, limit)
        )
    canary_q = histogram_quantile(q, hc)
    above = exceedance(hc, limit)
    verdict = against_limit(above.low, above.high, timed, tail, budget)
    message = (
        f"canary {name} {_ms(canary_q)}, {above.high / timed:.1%} of {timed:.0f} requests above "
        f"{_ms(limit)}: {_OUTCOMES[verdict]}"
    )
    return reason_for("latency-max", verdict, rule, message, Seen(canary_q, stable_q, limit))


def assess_error_rate(
    check: ErrorRateCheck, canary: ArmCounters, stable: ArmCounters, budget: ErrorBudget
) -> Reason:
    """The canary's 5xx fraction against the absolute limit; 4xx leave the denominator too.

    Stable's rate is reported for comparison only: the limit is an objective of the service,
    and a stable version breaking it is no excuse for a canary to.
    """
    rule = f"5xx responses must stay under {check.max:.2%} of the canary's requests (4xx excluded)"

    def served(arm: ArmCounters) -> tuple[float, float] | None:
        if arm.server_errors is None or arm.requests is None or arm.client_errors is None:
            return None
        return arm.server_errors, max(arm.requests - arm.client_errors, arm.server_errors)

    counted, reference = served(canary), served(stable)
    stable_rate = reference[0] / reference[1] if reference and reference[1] else None
    if counted is None or counted[1] < budget.min_samples:
        total = counted[1] if counted else 0.0
        message = f"{total:.0f} canary requests counted: {budget.min_samples} needed"
        return reason_for(
            "error-rate", Verdict.INCONCLUSIVE, rule, message, Seen(None, stable_rate, check.max)
        )
    errors, total = counted
    verdict = against_limit(errors, errors, total, check.max, budget)
    rate = f"{errors / total:.2%}"
    message = f"{errors:.0f} 5xx in {total:.0f} canary requests ({rate}): {_OUTCOMES[verdict]}"
    return reason_for(
        "error-rate", verdict, rule, message, Seen(errors / total, stable_rate, check.max)
    )


Assessment = Callable[[ArmCounters, ArmCounters, ErrorBudget], Reason]


def enabled_checks(analysis: AnalysisSpec) -> list[tuple[str, Assessment]]:
    """The enabled checks, by metric name, each bound to its settings."""
    checks: list[tuple[str, Assessment]] = []
    if analysis.accuracy is not None:
        checks.append(("accuracy", partial(assess_accuracy, analysis.accuracy)))
    if analysis.error is not None:
        checks.append(("error", partial(assess_error, analysis.error)))
    if analysis.latency is not None:
        checks.append(("latency", partial(assess_latency, analysis.latency)))
        if analysis.latency.max_ms is not None:
            checks.append(("latency-max", partial(assess_latency_max, analysis.latency)))
    if analysis.error_rate is not None:
        checks.append(("error-rate", partial(assess_error_rate, analysis.error_rate)))
    return checks


_INPUTS = {
    "accuracy": ("feedback_correct", "feedback_incorrect"),
    "error": ("feedback_measured", "absolute_error_sum", "squared_error_sum"),
    "latency": ("latency_buckets",),
    "latency-max": ("latency_buckets",),
    "error-rate": ("requests", "server_errors", "client_errors"),
    # A shadow step's comparisons (`mlcanary.rollout.shadow`).
    "agreement": ("shadow_agreed", "shadow_disagreed"),
    "difference": ("shadow_measured", "shadow_difference_sum", "shadow_difference_squares_sum"),
}
_COMPARED = frozenset({"accuracy", "error", "latency"})  # the checks that read stable's counts


def failed_queries(observation: Observation, metric: str, stable_serves: bool) -> list[str]:
    """The inputs of `metric` missing from this tick's observation, as camelCase paths."""
    arms = {"canary": observation.canary}
    if stable_serves and metric in _COMPARED:
        arms["stable"] = observation.stable
    return [
        f"{arm}.{to_camel(field)}"
        for arm, counters in arms.items()
        for field in _INPUTS[metric]
        if getattr(counters, field) is None
    ]


def unless_missing(assessed: Reason, missing: list[str]) -> Reason:
    """A check whose query failed this tick cannot pass: its counts are not up to date."""
    if not missing:
        return assessed
    message = f"query failed this tick ({', '.join(missing)}); {assessed.message}"
    return assessed.model_copy(update={"verdict": Verdict.INCONCLUSIVE, "message": message})


def task_problems(analysis: AnalysisSpec, task: str) -> list[tuple[str, str]]:
    """Whether the quality check fits the model's task: accuracy judges a classifier, error a
    regressor; the other one would wait for labels it never gets."""
    if task == "regression" and analysis.accuracy is not None:
        return [
            (
                "spec.analysis.accuracy",
                "the model is a regressor: judge it with analysis.error (accuracy then goes)",
            )
        ]
    if task == "classification" and analysis.error is not None:
        return [
            ("spec.analysis.error", "the model is a classifier: judge it with analysis.accuracy")
        ]
    return []
