"""The service's Prometheus metrics, labelled with model and version.

Model quality is computed in PromQL from the feedback counters, so that it aggregates correctly
over replicas and survives counter resets on restarts. A classifier's feedback is counted by
outcome (correct, incorrect): accuracy is
``sum by (version) (rate(mlcanary_feedback_total{outcome="correct"}[5m]))
/ sum by (version) (rate(mlcanary_feedback_total[5m]))``. A regressor's feedback is counted as
``outcome="measured"``, with what the sequential error test needs per version: the absolute
error as a histogram (its ``_sum`` and ``_count`` give the MAE), and the sums of squared errors
and of their squares (the MSE and the variances of both). MAE in PromQL:
``sum by (version) (rate(mlcanary_feedback_absolute_error_sum[5m]))
/ sum by (version) (rate(mlcanary_feedback_absolute_error_count[5m]))``.

prometheus_client is imported by the caller only after BentoML has set
``PROMETHEUS_MULTIPROC_DIR`` in the worker; imported earlier, it would run in single-process
mode and the workers' samples would never reach /metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from mlcanary.models.task import Judgement

__all__ = [
    "COPY_OUTCOMES",
    "ERROR_BUCKETS",
    "FLIP_CLASSES",
    "LATENCY_BUCKETS",
    "LOST_OUTCOMES",
    "OTHER_CLASS",
    "REFUSED_CLASS",
    "ServingMetrics",
    "ShadowMetrics",
]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Absolute errors span whatever the target's scale is (probabilities, prices, kelvins): three
# buckets a decade from 1e-4 to 1e6.
ERROR_BUCKETS = tuple(round(m * 10.0**e, 12) for e in range(-4, 7) for m in (1.0, 2.0, 5.0))
# A shadow copy's outcomes; dropped, timeout and failed copies are lost: never compared.
COPY_OUTCOMES = ("compared", "refused", "failed", "timeout", "dropped")
LOST_OUTCOMES = frozenset({"failed", "timeout", "dropped"})
# The flip matrix is bounded: the baseline's first classes by name, every other class as one.
FLIP_CLASSES = 16
OTHER_CLASS = "(other)"
REFUSED_CLASS = "(refused)"  # the canary refused the row (4xx) that the baseline answered


class ServingMetrics:
    def __init__(
        self,
        model: str,
        version: str,
        framework: str,
        device: str,
        digest: str,
        *,
        task: str = "classification",
        registry: CollectorRegistry | None = None,
    ) -> None:
        import prometheus_client as prom

        registry = registry if registry is not None else prom.REGISTRY

        self._model = model
        self._version = version
        labels = ("model", "version")
        self._predictions = prom.Counter(
            "mlcanary_predictions", "Rows predicted.", labels, registry=registry
        ).labels(model, version)
        self._feedback = prom.Counter(
            "mlcanary_feedback",
            "Accepted feedback, by outcome.",
            (*labels, "outcome"),
            registry=registry,
        )
        self._rejected = prom.Counter(
            "mlcanary_feedback_rejected",
            "Feedback refused and not counted, by reason; version is the receiving server's.",
            (*labels, "reason"),
            registry=registry,
        )
        self._requests = prom.Counter(
            "mlcanary_http_requests",
            "HTTP responses by endpoint and status code.",
            (*labels, "endpoint", "code"),
            registry=registry,
        )
        self._latency = prom.Histogram(
            "mlcanary_http_request_duration_seconds",
            "Time from request to the last byte of the response.",
            (*labels, "endpoint"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._overload = prom.Counter(
            "mlcanary_overload_rejections",
            "Requests refused because the server was at its in-flight limit.",
            labels,
            registry=registry,
        ).labels(model, version)
        self._input_rejected = prom.Counter(
            "mlcanary_model_input_rejections",
            "Requests the model itself refused (it raised a ValueError on them alone), answered "
            "422 like other bad input.",
            labels,
            registry=registry,
        ).labels(model, version)
        self._absolute_error = prom.Histogram(
            "mlcanary_feedback_absolute_error",
            "Regression: the absolute error of each labeled prediction (mean over outputs).",
            labels,
            buckets=ERROR_BUCKETS,
            registry=registry,
        )
        self._squared_error = prom.Counter(
            "mlcanary_feedback_squared_error",
            "Regression: the sum of squared errors of labeled predictions.",
            labels,
            registry=registry,
        )
        self._squared_error_squares = prom.Counter(
            "mlcanary_feedback_squared_error_squares",
            "Regression: the sum of the squares of squared errors (the variance of the MSE).",
            labels,
            registry=registry,
        )
        # Exported at zero from the start: an absent series would read as "no data".
        outcomes = ("correct", "incorrect") if task == "classification" else ("measured",)
        for outcome in outcomes:
            self._feedback.labels(model, version, outcome)
        if task != "classification":
            self._absolute_error.labels(model, version)
            self._squared_error.labels(model, version)
            self._squared_error_squares.labels(model, version)
        info = prom.Gauge(
            "mlcanary_model_info",
            "The loaded model version; always 1.",
            (*labels, "framework", "task", "device", "sha256"),
            multiprocess_mode="max",
            registry=registry,
        )
        info.labels(model, version, framework, task, device, digest).set(1)
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        """Bound children are cached: ``labels()`` costs more than the increment itself."""
        key = (metric._name, *values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(self._model, self._version, *values)
            self._children[key] = child
        return child

    def predicted(self, rows: int) -> None:
        self._predictions.inc(rows)

    def feedback(self, version: str, judgement: Judgement) -> None:
        """Counted for ``version``, the one that predicted, whichever server received it."""
        if judgement.correct is not None:
            outcome = "correct" if judgement.correct else "incorrect"
            self._feedback.labels(self._model, version, outcome).inc()
            return
        self._feedback.labels(self._model, version, "measured").inc()
        absolute, squared = judgement.absolute_error or 0.0, judgement.squared_error or 0.0
        self._absolute_error.labels(self._model, version).observe(absolute)
        self._squared_error.labels(self._model, version).inc(squared)
        self._squared_error_squares.labels(self._model, version).inc(squared * squared)

    def input_rejected(self) -> None:
        self._input_rejected.inc()

    def feedback_rejected(self, reason: str) -> None:
        self._child(self._rejected, reason).inc()

    def response(self, endpoint: str, code: int, seconds: float) -> None:
        self._child(self._requests, endpoint, str(code)).inc()
        self._child(self._latency, endpoint).observe(seconds)

    def overloaded(self) -> None:
        self._overload.inc()


class ShadowMetrics:
    """A shadow step's comparisons, counted by the stable server that sent the copies, per
    version pair: ``version`` is the canary whose answers were compared, ``baseline`` the
    version that answered the client (`mlcanary.serving.shadow`).

    Agreement in PromQL: ``sum(rate(mlcanary_shadow_comparisons_total{outcome="agree"}[5m]))
    / sum(rate(mlcanary_shadow_comparisons_total[5m]))``; the mean absolute difference of a
    regressor: ``..._absolute_difference_sum / ..._absolute_difference_count``.
    """

    def __init__(
        self, model: str, baseline: str, *, registry: CollectorRegistry | None = None
    ) -> None:
        import prometheus_client as prom

        registry = registry if registry is not None else prom.REGISTRY
        self._model = model
        self._baseline = baseline
        labels = ("model", "version", "baseline")
        self._copies = prom.Counter(
            "mlcanary_shadow_copies",
            "Copies of answered requests sent to the canary, by outcome: compared, refused "
            "(the canary answered 4xx), failed, timeout, dropped (the queue was full).",
            (*labels, "outcome"),
            registry=registry,
        )
        self._comparisons = prom.Counter(
            "mlcanary_shadow_comparisons",
            "Classification: rows both versions answered, by outcome (agree, disagree).",
            (*labels, "outcome"),
            registry=registry,
        )
        self._flips = prom.Counter(
            "mlcanary_shadow_flips",
            "Classification: disagreeing rows by baseline class and canary class; classes past "
            f"the baseline's first {FLIP_CLASSES} are '{OTHER_CLASS}', a refused row "
            f"'{REFUSED_CLASS}'.",
            (*labels, "baseline_class", "class"),
            registry=registry,
        )
        self._difference = prom.Histogram(
            "mlcanary_shadow_absolute_difference",
            "Regression: the absolute difference between the two predictions of a row (mean "
            "over outputs).",
            labels,
            buckets=ERROR_BUCKETS,
            registry=registry,
        )
        self._squared = prom.Counter(
            "mlcanary_shadow_squared_difference",
            "Regression: the sum of squared absolute differences (their variance).",
            labels,
            registry=registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, version: str, *values: str) -> Any:
        key = (metric._name, version, *values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(self._model, version, self._baseline, *values)
            self._children[key] = child
        return child

    def start(self, version: str, task: str) -> None:
        """Export a pair's series at zero from its first copy: an absent series would read as
        no data, a zero as nothing compared yet."""
        for outcome in COPY_OUTCOMES:
            self._child(self._copies, version, outcome)
        if task == "classification":
            for outcome in ("agree", "disagree"):
                self._child(self._comparisons, version, outcome)
        else:
            self._child(self._difference, version)
            self._child(self._squared, version)

    def copy(self, version: str, outcome: str) -> None:
        self._child(self._copies, version, outcome).inc()

    def classes(self, version: str, agreed: int, flips: Mapping[tuple[str, str], int]) -> None:
        if agreed:
            self._child(self._comparisons, version, "agree").inc(agreed)
        disagreed = sum(flips.values())
        if disagreed:
            self._child(self._comparisons, version, "disagree").inc(disagreed)
        for (baseline_class, canary_class), count in flips.items():
            self._child(self._flips, version, baseline_class, canary_class).inc(count)

    def differences(self, version: str, values: Iterable[float]) -> None:
        histogram = self._child(self._difference, version)
        squares = 0.0
        for value in values:
            histogram.observe(value)
            squares += value * value
        self._child(self._squared, version).inc(squares)
