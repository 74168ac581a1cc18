"""How many samples each built-in check needs before it can conclude, at the spec's defaults.

Run: ``python -m benchmarks.sample_sizes``

For a canary exactly like stable (no regression), each check is handed counts that keep the
proportions of the truth (the expected counts, no noise) and grown until it passes; for a
canary that regressed by the amount the check guards against, until it fails. The figures are
the canary's samples (labels for accuracy and error, requests for latency and the 5xx rate),
with stable receiving 9 times as many (a 10% step). The forecast at a hold
(`mlcanary.rollout.forecast`) uses the same growth, from the counts seen so far.
"""

from __future__ import annotations

import math

from mlcanary.rollout.checks import Assessment, enabled_checks, error_budget
from mlcanary.rollout.forecast import growth_needed
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.spec import AnalysisSpec, ErrorCheck
from tests.rollout.support import histogram

STEPS = 2
UNIT = 100.0  # canary samples the growth starts from


def _classifier(accuracy: float, median_s: float, errors: float) -> ArmCounters:
    return ArmCounters(
        predictions=UNIT,
        feedback_correct=UNIT * accuracy,
        feedback_incorrect=UNIT * (1 - accuracy),
        requests=UNIT,
        server_errors=UNIT * errors,
        client_errors=0.0,
        latency_buckets=histogram(UNIT, median_s),
    )


def _regressor(mae: float) -> ArmCounters:
    # Absolute errors exponentially distributed: E|e| = mae, E[e^2] = 2 mae^2, E[e^4] = 24 mae^4.
    return ArmCounters(
        predictions=UNIT,
        feedback_measured=UNIT,
        absolute_error_sum=UNIT * mae,
        squared_error_sum=UNIT * 2 * mae**2,
        squared_error_squares_sum=UNIT * 24 * mae**4,
        requests=UNIT,
        server_errors=0.0,
        client_errors=0.0,
        latency_buckets=histogram(UNIT, 0.04),
    )


def _needed(
    assess: Assessment, canary: ArmCounters, stable: ArmCounters, spec: AnalysisSpec
) -> str:
    budget = error_budget(spec, STEPS)
    stable_step = ArmCounters.model_validate(
        {
            **{
                k: v * 9
                for k, v in stable.model_dump(exclude={"latency_buckets"}).items()
                if v is not None
            },
            "latency_buckets": {le: n * 9 for le, n in (stable.latency_buckets or {}).items()},
        }
    )
    growth = growth_needed(assess, canary, stable_step, budget, stable_grows=True)
    return "beyond reach" if growth is None else f"{math.ceil(UNIT * growth):,}"


def main() -> None:
    spec = AnalysisSpec()
    regression_spec = AnalysisSpec(error=ErrorCheck())
    checks = dict(enabled_checks(spec)) | dict(enabled_checks(regression_spec))
    stable = _classifier(0.9, 0.04, 0.0)
    drop = spec.accuracy.max_drop if spec.accuracy else 0.02
    ratio = spec.latency.max_ratio if spec.latency else 1.25
    limit = spec.error_rate.max if spec.error_rate else 0.01
    rows = [
        ("accuracy", "labels", stable, _classifier(0.9 - drop, 0.04, 0.0), f"{drop:g} lower"),
        ("latency", "requests", stable, _classifier(0.9, 0.04 * ratio * 1.2, 0.0),
         f"p95 {ratio * 1.2:g}x"),
        ("error-rate", "requests", stable, _classifier(0.9, 0.04, 2 * limit),
         f"{2 * limit:.0%} 5xx"),
        ("error", "labels", _regressor(10.0), _regressor(10.0 * 1.1), "MAE +10%"),
    ]  # fmt: skip
    print(
        f"alpha {spec.alpha}, beta {spec.beta}, {STEPS} steps, minSamples {spec.min_samples}; "
        "canary samples (stable gets 9x)\n"
    )
    print("| check | unit | canary like stable: passes after | regressed | fails after |")
    print("|---|---|--:|---|--:|")
    for name, unit, base, regressed, how in rows:
        assess = checks[name]
        same = base if name != "error-rate" else _classifier(0.9, 0.04, 0.0)
        print(
            f"| {name} | {unit} | {_needed(assess, same, base, spec)} | {how} "
            f"| {_needed(assess, regressed, base, spec)} |"
        )


if __name__ == "__main__":
    main()
