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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from mlcanary.models.task import Judgement

__all__ = ["ERROR_BUCKETS", "LATENCY_BUCKETS", "ServingMetrics"]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Absolute errors span whatever the target's scale is (probabilities, prices, kelvins): three
# buckets a decade from 1e-4 to 1e6.
ERROR_BUCKETS = tuple(round(m * 10.0**e, 12) for e in range(-4, 7) for m in (1.0, 2.0, 5.0))


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
