"""The service's Prometheus metrics, labelled with model and version.

Accuracy is computed in PromQL from the feedback counters, for example
``sum by (version) (rate(mlcanary_feedback_total{outcome="correct"}[5m]))
/ sum by (version) (rate(mlcanary_feedback_total[5m]))``, so that it aggregates correctly over
replicas and survives counter resets on restarts.

prometheus_client is imported by the caller only after BentoML has set
``PROMETHEUS_MULTIPROC_DIR`` in the worker; imported earlier, it would run in single-process
mode and the workers' samples would never reach /metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["LATENCY_BUCKETS", "ServingMetrics"]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class ServingMetrics:
    def __init__(
        self,
        model: str,
        version: str,
        framework: str,
        device: str,
        digest: str,
        *,
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
        for outcome in ("correct", "incorrect"):
            # Exported at zero from the start: an absent series would read as "no data".
            self._feedback.labels(model, version, outcome)
        info = prom.Gauge(
            "mlcanary_model_info",
            "The loaded model version; always 1.",
            (*labels, "framework", "device", "sha256"),
            multiprocess_mode="max",
            registry=registry,
        )
        info.labels(model, version, framework, device, digest).set(1)
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

    def feedback(self, version: str, correct: bool) -> None:
        outcome = "correct" if correct else "incorrect"
        self._feedback.labels(self._model, version, outcome).inc()

    def feedback_rejected(self, reason: str) -> None:
        self._child(self._rejected, reason).inc()

    def response(self, endpoint: str, code: int, seconds: float) -> None:
        self._child(self._requests, endpoint, str(code)).inc()
        self._child(self._latency, endpoint).observe(seconds)

    def overloaded(self) -> None:
        self._overload.inc()
