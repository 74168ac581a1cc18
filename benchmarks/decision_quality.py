"""How often, and how fast, the rollout engine decides right, against Flagger- and Argo-style rules.

Run: ``python -m benchmarks.decision_quality --rollouts 2000 --seed 1``

Why synthetic traffic: only with a known truth can a wrong decision be counted. Each interval
(30 s) brings a fixed number of requests split by the step's weights; a fixed share of them gets
a ground-truth label, correct with the version's accuracy (Bernoulli draws); latencies are
log-normal, counted into the serving layer's Prometheus buckets; 5xx and 4xx are Bernoulli draws.
Three truths: the canary equals stable, the canary is 3 accuracy points worse, the canary is 1.5
times slower (every request, so p95 too).

The engine is the real `decide()`, fed cumulative counters tick by tick as Prometheus would serve
them, with alpha = beta = 1%, maxDrop set to the 3-point drop simulated (for accuracy it is the
regression the test must catch) and maxRatio 1.25, the design's default, between the two
latencies simulated (for latency it is a tolerated bound).

The baselines, fed the same kind of traffic:

* Flagger-style: every interval, each metric of the canary on that interval's data is checked
  against a fixed threshold; a step is passed after K passing intervals (a Flagger analysis with
  the step weight repeated K times), and the rollout rolls back at the N-th failed interval,
  counted over the whole analysis as Flagger's ``threshold`` is.
* Argo-style: an AnalysisRun per step takes one measurement per interval, fails once more than
  ``failureLimit`` measurements failed, and succeeds after ``count`` measurements.

Their thresholds are tuned in their favour: they compare the canary with stable's true accuracy
and latency, known exactly instead of measured, and every parameter (accuracy and p95 thresholds,
K per step, N, count per step, failureLimit) is searched on a separate set of simulated rollouts
for the fastest median decision whose error rates there are at most 1%, the engine's targets.
They are then measured on fresh rollouts, like the engine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from mlcanary.rollout import (
    Action,
    ArmCounters,
    ModelRollout,
    Observation,
    RolloutStatus,
    decide,
    load_spec,
)
from mlcanary.rollout.observations import histogram_quantile
from mlcanary.serving.metrics import LATENCY_BUCKETS

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

REQUESTS_PER_INTERVAL = 3000  # 100 requests/s over a 30 s interval
LABELED_FRACTION = 0.5
STABLE_ACCURACY = 0.90
LATENCY_MEDIAN_S = 0.040  # log-normal; p95 = 91 ms with this sigma
LATENCY_SIGMA = 0.5
SERVER_ERROR_RATE = 0.002
CLIENT_ERROR_RATE = 0.01
ERROR_RATE_LIMIT = 0.01
WEIGHTS = (10, 100)
MAX_INTERVALS = 40  # per step: maxDuration 20m at 30 s
TARGET = 0.01
BOUNDS = (*LATENCY_BUCKETS, math.inf)


def engine_spec(error_rate: float, label_delay_intervals: int = 0) -> ModelRollout:
    """The engine's spec, with alpha = beta = `error_rate`, and labelDelay when labels are late."""
    delay = f"labelDelay: {label_delay_intervals * 30}s" if label_delay_intervals else ""
    return load_spec(f"""
    apiVersion: mlcanary.dev/v1alpha1
    kind: ModelRollout
    metadata: {{name: benchmark}}
    spec:
      model: digits
      stable: {{version: v1}}
      canary: {{version: v2}}
      metrics: {{provider: prometheus, address: http://127.0.0.1:9090}}
      steps: {list(WEIGHTS)}
      analysis:
        interval: 30s
        minSamples: 200
        maxDuration: {MAX_INTERVALS * 30}s
        alpha: {error_rate}
        beta: {error_rate}
        accuracy: {{maxDrop: 0.03}}
        latency: {{quantile: 0.95, maxRatio: 1.25}}
        errorRate: {{max: {ERROR_RATE_LIMIT}}}
        {delay}
    """)


@dataclass(frozen=True)
class Scenario:
    name: str
    accuracy_drop: float
    slowdown: float
    regression: bool


SCENARIOS = (
    Scenario("canary = stable", 0.0, 1.0, regression=False),
    Scenario("accuracy -3 points", 0.03, 1.0, regression=True),
    Scenario("p95 1.5x slower", 0.0, 1.5, regression=True),
)


@dataclass(frozen=True)
class Arm:
    """One version's traffic at one step: per-interval draws, arrays of [rollout, interval]."""

    labeled: int
    requests: int
    correct: IntArray
    server_errors: IntArray
    client_errors: IntArray
    buckets: IntArray  # [rollout, interval, bucket]: requests per bucket, not cumulative


@dataclass(frozen=True)
class StepTraffic:
    canary: Arm
    stable: Arm


def _arm(
    rng: np.random.Generator, rollouts: int, share: int, accuracy: float, slowdown: float
) -> Arm:
    labeled = REQUESTS_PER_INTERVAL * share // 100 * LABELED_FRACTION
    requests = REQUESTS_PER_INTERVAL * share // 100
    shape = (rollouts, MAX_INTERVALS)
    log_median = math.log(LATENCY_MEDIAN_S * slowdown)
    cdf = [NormalDist(log_median, LATENCY_SIGMA).cdf(math.log(le)) for le in LATENCY_BUCKETS]
    probabilities = np.diff([0.0, *cdf, 1.0])
    return Arm(
        labeled=int(labeled),
        requests=requests,
        correct=rng.binomial(int(labeled), accuracy, shape),
        server_errors=rng.binomial(requests, SERVER_ERROR_RATE, shape),
        client_errors=rng.binomial(requests, CLIENT_ERROR_RATE, shape),
        buckets=rng.multinomial(requests, probabilities, shape),
    )


def simulate(rng: np.random.Generator, rollouts: int, scenario: Scenario) -> list[StepTraffic]:
    accuracy = STABLE_ACCURACY - scenario.accuracy_drop
    return [
        StepTraffic(
            canary=_arm(rng, rollouts, weight, accuracy, scenario.slowdown),
            stable=_arm(rng, rollouts, 100 - weight, STABLE_ACCURACY, 1.0),
        )
        for weight in WEIGHTS
    ]


@dataclass(frozen=True)
class Outcomes:
    """Per rollout: whether the canary reached the last step (100%) and was promoted, and the
    intervals and labeled canary samples the decision took."""

    advanced: BoolArray
    promoted: BoolArray
    intervals: IntArray
    samples: IntArray

    def column(self, index: int) -> Outcomes:
        """One setting's outcomes out of a grid's [rollout, setting] arrays."""
        return Outcomes(
            self.advanced[:, index],
            self.promoted[:, index],
            self.intervals[:, index],
            self.samples[:, index],
        )


MEAN_LABEL_DELAY = 5  # intervals, for the delayed-label rows
_DELAYS = np.exp(-np.arange(MAX_INTERVALS + 1) / MEAN_LABEL_DELAY)
LABEL_DELAYS = _DELAYS / _DELAYS.sum()  # P(a label arrives d intervals after its prediction)


@dataclass(frozen=True)
class LateLabels:
    """Labels that arrive a random number of intervals after their prediction."""

    rng: np.random.Generator
    delays: FloatArray  # P(d intervals late), d = 0, 1, ...


class _Cumulative:
    """A version's counters as Prometheus would serve them: running totals since start. With
    `late`, each interval's labels are spread over the intervals they arrive in, correct and
    incorrect alike (a delay that does not depend on the answer)."""

    def __init__(self, late: LateLabels | None = None) -> None:
        self.correct = self.labeled = self.requests = self.server = self.client = 0
        self.buckets = np.zeros(len(BOUNDS), dtype=np.int64)
        self.late = late
        self.coming_correct = np.zeros(MAX_INTERVALS + 1, dtype=np.int64)
        self.coming_labeled = np.zeros(MAX_INTERVALS + 1, dtype=np.int64)

    def _label(self, correct: int, labeled: int) -> None:
        if self.late is None:
            self.correct += correct
            self.labeled += labeled
            return
        right = self.late.rng.multinomial(correct, self.late.delays)
        wrong = self.late.rng.multinomial(labeled - correct, self.late.delays)
        self.coming_correct += right
        self.coming_labeled += right + wrong
        self.correct += int(self.coming_correct[0])
        self.labeled += int(self.coming_labeled[0])
        self.coming_correct = np.append(self.coming_correct[1:], 0)
        self.coming_labeled = np.append(self.coming_labeled[1:], 0)

    def add(self, arm: Arm, rollout: int, interval: int) -> None:
        self._label(int(arm.correct[rollout, interval]), arm.labeled)
        self.requests += arm.requests
        self.server += int(arm.server_errors[rollout, interval])
        self.client += int(arm.client_errors[rollout, interval])
        self.buckets += arm.buckets[rollout, interval]

    def counters(self) -> ArmCounters:
        cumulative = np.cumsum(self.buckets)
        return ArmCounters(
            predictions=self.requests,
            feedback_correct=self.correct,
            feedback_incorrect=self.labeled - self.correct,
            requests=self.requests,
            server_errors=self.server,
            client_errors=self.client,
            latency_buckets=dict(zip(BOUNDS, cumulative.tolist(), strict=True)),
        )


def run_engine(
    spec: ModelRollout, traffic: Sequence[StepTraffic], rollout: int, late: LateLabels | None
) -> tuple[bool, bool, int, int]:
    """One rollout through `decide()`: (reached the last step, promoted, intervals, samples)."""
    canary, stable = _Cumulative(late), _Cumulative(late)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    interval = spec.spec.analysis.interval

    def observe() -> Observation:
        return Observation(timestamp=now, stable=stable.counters(), canary=canary.counters())

    decision = decide(spec, RolloutStatus(), observe(), now)
    used = [0] * len(traffic)
    samples = 0
    while decision.action not in {Action.PROMOTE, Action.ROLLBACK}:
        step = decision.status.step_index
        canary.add(traffic[step].canary, rollout, used[step])
        stable.add(traffic[step].stable, rollout, used[step])
        used[step] += 1
        samples += traffic[step].canary.labeled
        now += interval
        decision = decide(spec, decision.status, observe(), now)
    advanced = used[-1] > 0
    return advanced, decision.action is Action.PROMOTE, sum(used), samples


def engine_outcomes(
    spec: ModelRollout, traffic: Sequence[StepTraffic], late: LateLabels | None = None
) -> Outcomes:
    rollouts = traffic[0].canary.correct.shape[0]
    results = [run_engine(spec, traffic, rollout, late) for rollout in range(rollouts)]
    advanced, promoted, intervals, samples = (np.array(c) for c in zip(*results, strict=True))
    return Outcomes(advanced, promoted, intervals, samples)


@dataclass(frozen=True)
class Measured:
    """Per-interval canary metrics at one step, what a threshold rule looks at."""

    accuracy: FloatArray
    p95: FloatArray
    error_rate: FloatArray
    labeled: int


def measure(arm: Arm) -> Measured:
    cumulative = np.cumsum(arm.buckets, axis=2)
    p95 = np.array(
        [
            [histogram_quantile(0.95, dict(zip(BOUNDS, row, strict=True))) for row in rows]
            for rows in cumulative.tolist()
        ]
    )
    served = arm.requests - arm.client_errors
    return Measured(arm.correct / arm.labeled, p95, arm.server_errors / served, arm.labeled)


def _checks_pass(measured: Measured, accuracy: float, p95: float) -> BoolArray:
    return np.asarray(
        (measured.accuracy >= accuracy)
        & (measured.p95 <= p95)
        & (measured.error_rate <= ERROR_RATE_LIMIT)
    )


def _event_times(flags: BoolArray, count: int) -> IntArray:
    """[rollout, k]: the interval index of the (k+1)-th True, MAX_INTERVALS if it never came."""
    running = np.cumsum(flags, axis=1)
    times = np.full((flags.shape[0], count), MAX_INTERVALS, dtype=np.int64)
    for k in range(count):
        reached = running[:, -1] > k
        times[reached, k] = np.argmax(running[reached] > k, axis=1)
    return times


@dataclass(frozen=True)
class Grid:
    """A family of rule settings evaluated at once; `settings` lists them in result order."""

    settings: list[dict[str, float]]
    outcomes: Outcomes  # arrays of [rollout, setting]


def flagger_grid(steps: Sequence[Measured], accuracy: float, p95: float) -> Grid:
    """Flagger-style rules for every K (per step) and N, with the given thresholds."""
    passes = [_checks_pass(step, accuracy, p95) for step in steps]
    k1s, k2s, ns = np.arange(1, 31), np.arange(1, 7), np.arange(1, 15)
    tp1, tf1 = _event_times(passes[0], k1s[-1]), _event_times(~passes[0], ns[-1])
    tp2, tf2 = _event_times(passes[1], k2s[-1]), _event_times(~passes[1], ns[-1])
    passed1 = tp1[:, k1s - 1][:, :, None]  # [rollout, k1, n]
    failed1 = tf1[:, ns - 1][:, None, :]
    advanced = passed1 < failed1
    t1 = np.minimum(np.where(advanced, passed1, failed1) + 1, MAX_INTERVALS)
    failures = np.where(advanced, passed1 + 1 - k1s[None, :, None], 0)
    left = np.maximum(ns[None, None, :] - failures - 1, 0)
    failed2 = np.take_along_axis(tf2, left.reshape(len(tf2), -1), axis=1).reshape(left.shape)
    passed2 = tp2[:, k2s - 1][:, None, None, :]  # [rollout, k1, n, k2]
    promoted = advanced[..., None] & (passed2 < failed2[..., None])
    t2 = np.minimum(np.minimum(passed2, failed2[..., None]) + 1, MAX_INTERVALS)
    t2 = np.where(advanced[..., None], t2, 0)
    settings = [
        {"accuracy": accuracy, "p95": p95, "K1": float(k1), "N": float(n), "K2": float(k2)}
        for k1, n, k2 in itertools.product(k1s, ns, k2s)
    ]
    rollouts = len(tp1)
    return Grid(
        settings,
        Outcomes(
            np.broadcast_to(advanced[..., None], promoted.shape).reshape(rollouts, -1),
            promoted.reshape(rollouts, -1),
            (t1[..., None] + t2).reshape(rollouts, -1),
            (t1[..., None] * steps[0].labeled + t2 * steps[1].labeled).reshape(rollouts, -1),
        ),
    )


def argo_grid(steps: Sequence[Measured], accuracy: float, p95: float) -> Grid:
    """Argo-style rules for every count (per step) and failureLimit, with the given thresholds."""
    counts = (np.arange(1, MAX_INTERVALS + 1), np.arange(1, 7))
    limits = np.arange(0, 13)
    per_step = []
    for step, count in zip(steps, counts, strict=True):
        failed = _event_times(~_checks_pass(step, accuracy, p95), limits[-1] + 1)
        failed_at = failed[:, limits][:, None, :]  # [rollout, count, limit]
        success = failed_at >= count[None, :, None]
        per_step.append((success, np.where(success, count[None, :, None], failed_at + 1)))
    (ok1, t1), (ok2, t2) = per_step
    promoted = ok1[:, :, None, :] & ok2[:, None, :, :]  # [rollout, count1, count2, limit]
    t2_taken = np.where(ok1[:, :, None, :], t2[:, None, :, :], 0)
    intervals = t1[:, :, None, :] + t2_taken
    samples = t1[:, :, None, :] * steps[0].labeled + t2_taken * steps[1].labeled
    settings = [
        {
            "accuracy": accuracy,
            "p95": p95,
            "count1": float(c1),
            "count2": float(c2),
            "failureLimit": float(limit),
        }
        for c1, c2, limit in itertools.product(*counts, limits)
    ]
    rollouts = len(ok1)
    return Grid(
        settings,
        Outcomes(
            np.broadcast_to(ok1[:, :, None, :], promoted.shape).reshape(rollouts, -1),
            promoted.reshape(rollouts, -1),
            intervals.reshape(rollouts, -1),
            samples.reshape(rollouts, -1),
        ),
    )


def wrong_rate(outcomes: Outcomes, scenario: Scenario) -> FloatArray:
    """False promotions for a regression, false rollbacks otherwise; per setting for a grid."""
    wrong = outcomes.promoted if scenario.regression else ~outcomes.promoted
    return np.asarray(wrong.mean(axis=0), dtype=np.float64)


def exposure(outcomes: Outcomes, scenario: Scenario) -> FloatArray:
    """How often a regressed canary was sent to 100% of traffic, whatever came next."""
    return np.asarray(outcomes.advanced.mean(axis=0) * scenario.regression, dtype=np.float64)


def thresholds() -> Iterator[tuple[float, float]]:
    """Candidate thresholds between the truths: stable accuracy 90% vs 87%, p95 91 vs 137 ms."""
    for accuracy in np.arange(0.8725, 0.8976, 0.0025):
        for p95 in (0.100, 0.106, 0.112, 0.118, 0.125):
            yield float(accuracy), p95


Builder = Callable[[Sequence[Measured], float, float], Grid]
FAMILIES: dict[str, Builder] = {"Flagger-style": flagger_grid, "Argo-style": argo_grid}


def tune(build: Builder, measured: dict[Scenario, list[Measured]]) -> dict[bool, dict[str, float]]:
    """For each constraint (without, then with the exposure limit), the setting with the fastest
    mean of per-scenario median intervals among those within the error targets: at most 1% false
    rollbacks and false promotions and, with the limit, no more regressed canaries at 100%."""
    best: dict[bool, tuple[float, dict[str, float]]] = {}
    for accuracy, p95 in thresholds():
        grids = {scenario: build(steps, accuracy, p95) for scenario, steps in measured.items()}
        errors = np.max([wrong_rate(grid.outcomes, s) for s, grid in grids.items()], axis=0)
        exposed = np.max([exposure(grid.outcomes, s) for s, grid in grids.items()], axis=0)
        speed = np.mean([np.median(grid.outcomes.intervals, axis=0) for grid in grids.values()], 0)
        settings = next(iter(grids.values())).settings
        for limit_exposure, worst in ((False, errors), (True, np.maximum(errors, exposed))):
            allowed = np.where(worst <= TARGET, speed, np.inf)
            choice = int(np.argmin(allowed))
            if allowed[choice] < best.get(limit_exposure, (np.inf, {}))[0]:
                best[limit_exposure] = (float(allowed[choice]), settings[choice])
    if len(best) < 2:
        raise RuntimeError(f"no setting meets the {TARGET:.0%} targets")
    return {limit_exposure: setting for limit_exposure, (_, setting) in best.items()}


def evaluate(
    build: Builder, setting: dict[str, float], measured: dict[Scenario, list[Measured]]
) -> dict[Scenario, Outcomes]:
    """The tuned setting's outcomes on the evaluation rollouts."""
    results = {}
    for scenario, steps in measured.items():
        grid = build(steps, setting["accuracy"], setting["p95"])
        results[scenario] = grid.outcomes.column(grid.settings.index(setting))
    return results


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def tables(rows: dict[str, dict[Scenario, Outcomes]]) -> str:
    regressions = [s for s in SCENARIOS if s.regression]
    errors = _markdown(
        [
            "method",
            *(
                f"{s.name}: {'false promotion' if s.regression else 'false rollback'}"
                for s in SCENARIOS
            ),
            *(f"{s.name}: sent to 100%" for s in regressions),
        ],
        [
            [
                name,
                *(f"{float(wrong_rate(results[s], s)):.2%}" for s in SCENARIOS),
                *(f"{float(exposure(results[s], s)):.2%}" for s in regressions),
            ]
            for name, results in rows.items()
        ],
    )
    speed = _markdown(
        [
            "method",
            *(f"{s.name}: median intervals" for s in SCENARIOS),
            *(f"{s.name}: median labeled samples" for s in SCENARIOS),
        ],
        [
            [
                name,
                *(f"{np.median(results[s].intervals):g}" for s in SCENARIOS),
                *(f"{np.median(results[s].samples):g}" for s in SCENARIOS),
            ]
            for name, results in rows.items()
        ],
    )
    return f"{errors}\n\n{speed}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Decision quality of the rollout engine.")
    parser.add_argument("--rollouts", type=int, default=2000, help="per scenario and data set")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tuning_rng, evaluation_rng, delay_rng = (
        np.random.default_rng(seed) for seed in np.random.SeedSequence(args.seed).spawn(3)
    )
    tuning = {s: simulate(tuning_rng, args.rollouts, s) for s in SCENARIOS}
    evaluation = {s: simulate(evaluation_rng, args.rollouts, s) for s in SCENARIOS}
    tuning_measured = {s: [measure(t.canary) for t in steps] for s, steps in tuning.items()}
    evaluation_measured = {s: [measure(t.canary) for t in steps] for s, steps in evaluation.items()}
    rows = {}
    for error_rate in (TARGET, 0.05):
        spec = engine_spec(error_rate)
        rows[f"engine, alpha = beta = {error_rate:.0%}"] = {
            s: engine_outcomes(spec, steps) for s, steps in evaluation.items()
        }
    late = LateLabels(delay_rng, LABEL_DELAYS)
    for label_delay in (0, MEAN_LABEL_DELAY):
        spec = engine_spec(TARGET, label_delay)
        rows[
            f"engine, {TARGET:.0%}, labels late (exponential, mean {MEAN_LABEL_DELAY} intervals), "
            f"labelDelay {label_delay} intervals"
        ] = {s: engine_outcomes(spec, steps, late) for s, steps in evaluation.items()}
    for family, build in FAMILIES.items():
        for limit_exposure, setting in tune(build, tuning_measured).items():
            label = f"{family}, tuned to the targets" + (" and exposure" if limit_exposure else "")
            rows[label] = evaluate(build, setting, evaluation_measured)
            shown = ", ".join(f"{key}={value:g}" for key, value in setting.items())
            print(f"{label}: {shown}")
    print(
        f"\n{args.rollouts} rollouts per scenario, seed {args.seed}; steps {list(WEIGHTS)}, "
        f"interval 30s, {REQUESTS_PER_INTERVAL} requests and "
        f"{int(REQUESTS_PER_INTERVAL * LABELED_FRACTION)} labels per interval at 100%\n"
    )
    print(tables(rows))
    print(f"\n{time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
