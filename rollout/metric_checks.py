"""The user's own metric checks (`spec.MetricCheck`), judged tick after tick.

Why a streak rule and not a test: a query's value (a conversion rate, a share of low-confidence
predictions, memory per request) comes with no count of the observations behind it, so no
error rate can be computed for it, let alone kept under repeated looks. What a user can rely on
is the rule itself, stated in the spec as Argo Rollouts' AnalysisTemplates and Flagger's
MetricTemplates state it: ``failureLimit`` consecutive evaluations out of bounds roll back,
``minEvaluations`` consecutive evaluations within them pass. A value that is missing (nothing,
NaN, an error) is never within bounds: it resets the passes and leaves the failures as they are.

Compared checks need stable's value. At a step where stable serves nothing (the last, 100%),
its last value from the previous step stands in, as `RolloutStatus.reference` does for counts.
"""

from __future__ import annotations

from mlcanary.rollout.observations import MetricValues
from mlcanary.rollout.spec import MetricCheck, MetricComparison, MetricRange
from mlcanary.rollout.status import MetricTally, Reason, Verdict

__all__ = ["assess_metric", "stable_value"]


def _compared(rule: MetricComparison, stable: float) -> tuple[float | None, float | None]:
    """The [low, high] bounds the canary must stay within, given stable's value."""
    highs = [
        bound
        for bound in (
            rule.max_ratio * stable if rule.max_ratio is not None else None,
            stable + rule.max_increase if rule.max_increase is not None else None,
        )
        if bound is not None
    ]
    lows = [
        bound
        for bound in (
            rule.min_ratio * stable if rule.min_ratio is not None else None,
            stable - rule.max_decrease if rule.max_decrease is not None else None,
        )
        if bound is not None
    ]
    return (max(lows) if lows else None, min(highs) if highs else None)


def _bounds(check: MetricCheck, stable: float | None) -> tuple[float | None, float | None] | None:
    """The canary's bounds this tick; None when stable's value is needed and missing."""
    if check.range is not None:
        return check.range.min, check.range.max
    if check.compare is None or stable is None:
        return None
    return _compared(check.compare, stable)


def _describe(check: MetricCheck) -> str:
    if check.range is not None:
        return _range_words(check.range)
    rule = check.compare
    assert rule is not None  # the spec requires one of them
    words = []
    if rule.max_ratio is not None:
        words.append(f"at most {rule.max_ratio:g} x stable")
    if rule.min_ratio is not None:
        words.append(f"at least {rule.min_ratio:g} x stable")
    if rule.max_increase is not None:
        words.append(f"at most stable + {rule.max_increase:g}")
    if rule.max_decrease is not None:
        words.append(f"at least stable - {rule.max_decrease:g}")
    return " and ".join(words)


def _range_words(rule: MetricRange) -> str:
    if rule.min is not None and rule.max is not None:
        return f"within [{rule.min:g}, {rule.max:g}]"
    return f"at least {rule.min:g}" if rule.min is not None else f"at most {rule.max:g}"


def stable_value(
    values: MetricValues | None, stable_serves: bool, reference: float | None
) -> float | None:
    """Stable's value to compare with: this tick's while stable serves, else the reference."""
    if stable_serves:
        return values.stable if values is not None else None
    return reference


def assess_metric(
    check: MetricCheck, canary: float | None, stable: float | None, tally: MetricTally
) -> tuple[Reason, MetricTally]:
    """This tick's evaluation of one check, and its tally after it."""
    rule = (
        f"the canary's {check.name} must be {_describe(check)}: {check.failure_limit} "
        f"consecutive evaluations outside roll back, {check.min_evaluations} inside pass "
        "(a rule on values, without a statistical guarantee)"
    )
    bounds = _bounds(check, stable)
    evaluations = tally.evaluations + 1
    low, high = bounds or (None, None)
    if canary is None or bounds is None:
        after = MetricTally(evaluations=evaluations, passes=0, failures=tally.failures)
        side = "canary" if canary is None else "stable"
        message = f"no value for {side} this tick (nothing, NaN or an error): it cannot pass"
    else:
        inside = (low is None or canary >= low) and (high is None or canary <= high)
        after = MetricTally(
            evaluations=evaluations,
            passes=tally.passes + 1 if inside else 0,
            failures=0 if inside else tally.failures + 1,
        )
        against = f" against stable {stable:.4g}" if check.compare is not None else ""
        where = "within bounds" if inside else "out of bounds"
        message = (
            f"canary {canary:.4g}{against}: {where} "
            f"({after.passes} in a row within, {after.failures} in a row outside)"
        )
    if after.failures >= check.failure_limit:
        verdict = Verdict.FAIL
    elif after.passes >= check.min_evaluations:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    threshold = high if high is not None else low
    reason = Reason(
        metric=check.name,
        verdict=verdict,
        canary=canary,
        stable=stable,
        threshold=threshold,
        rule=rule,
        message=message,
    )
    return reason, after
