"""Scraping and alerting for one model: a ServiceMonitor and a PrometheusRule.

The alerts watch a model between and after rollouts, when no controller compares versions:

* accuracy: from ground-truth feedback, a version more than ``accuracy.maxDrop`` below the best
  version of the model, or below its own accuracy of the previous hours; only once
  ``analysis.minSamples`` labels back the estimate, so that a handful of labels cannot page;
* latency: the quantile of ``latency.quantile`` more than 3 standard deviations above its mean
  over the hour before (and at least 10% above it, so that a very steady series does not alert
  on a jitter); the baseline window ends 5 minutes ago so that the anomaly does not raise its
  own baseline before it has lasted long enough to alert;
* 5xx: a version answering more than ``errorRate.max`` of its requests with 5xx (4xx are the
  client's mistakes);
* GPU memory (GPU variant): a device more than 90% full, from the serving pods' NVML gauges
  ``mlcanary_gpu_memory_used_bytes`` and ``mlcanary_gpu_memory_total_bytes`` (labels model,
  version, gpu).

Recording rules compute each signal once per evaluation; the alerts read them, and the
latency baseline needs a recorded series to take ``avg_over_time``/``stddev_over_time`` over.
Only the model's version Services are scraped (they carry the version label): the model's own
Service selects the same pods and would scrape them twice.
"""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import naming
from mlcanary.k8s.render.workloads import labels
from mlcanary.rollout.spec import RolloutSpec

__all__ = [
    "ACCURACY",
    "FEEDBACK",
    "GPU_MEMORY_FULL",
    "LATENCY",
    "SERVER_ERRORS",
    "prometheus_rule",
    "service_monitor",
]

ACCURACY = "mlcanary:feedback_accuracy:ratio_rate30m"
FEEDBACK = "mlcanary:feedback:increase30m"
LATENCY = "mlcanary:predict_latency_seconds:quantile_rate5m"
SERVER_ERRORS = "mlcanary:http_5xx:ratio_rate5m"
GPU_MEMORY_FULL = 0.9
_BY = "by (namespace, model, version)"
_SERIES = "on (namespace, model, version)"


def service_monitor(model: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": naming.route(model), "namespace": namespace, "labels": labels(model)},
        "spec": {
            "selector": {
                "matchLabels": {naming.MODEL_LABEL: model},
                "matchExpressions": [{"key": naming.VERSION_LABEL, "operator": "Exists"}],
            },
            "endpoints": [
                {"port": naming.SERVING_PORT_NAME, "path": "/metrics", "interval": "15s"}
            ],
        },
    }


def _recording_rules(match: str, quantile: float) -> list[dict[str, Any]]:
    feedback = f"mlcanary_feedback_total{{{match}}}"
    requests = f"mlcanary_http_requests_total{{{match}}}"
    buckets = f'mlcanary_http_request_duration_seconds_bucket{{{match},endpoint="/predict"}}'
    return [
        {
            "record": ACCURACY,
            "expr": (
                f'sum {_BY} (rate(mlcanary_feedback_total{{{match},outcome="correct"}}[30m]))\n'
                f"/ sum {_BY} (rate({feedback}[30m]))"
            ),
        },
        {"record": FEEDBACK, "expr": f"sum {_BY} (increase({feedback}[30m]))"},
        {
            "record": LATENCY,
            "expr": (
                f"histogram_quantile({quantile},"
                f" sum by (namespace, model, version, le) (rate({buckets}[5m])))"
            ),
            "labels": {"quantile": str(quantile)},
        },
        {
            "record": SERVER_ERRORS,
            "expr": (
                f'sum {_BY} (rate(mlcanary_http_requests_total{{{match},code=~"5.."}}[5m]))\n'
                f"/ sum {_BY} (rate({requests}[5m]))"
            ),
        },
    ]


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            # No {{ $value }}: alerts then group and deduplicate by their labels alone.
            "description": "{{ $labels.namespace }}/{{ $labels.model }} {{ $labels.version }}",
        },
    }


def _accuracy_alerts(match: str, max_drop: float, min_samples: int) -> list[dict[str, Any]]:
    accuracy = f"{ACCURACY}{{{match}}}"
    enough = f"and {_SERIES} {FEEDBACK}{{{match}}} >= {min_samples}"
    return [
        _alert(
            "MlcanaryAccuracyBelowOtherVersion",
            # Arithmetic binds tighter than comparison: best accuracy minus the drop.
            f"{accuracy}\n< on (namespace, model) group_left"
            f" max by (namespace, model) ({accuracy}) - {max_drop}\n{enough}",
            "10m",
            "critical",
            f"A version's accuracy is more than {max_drop} below the model's best version.",
        ),
        _alert(
            "MlcanaryAccuracyDropped",
            f"{accuracy}\n< (avg_over_time({accuracy}[6h] offset 30m) - {max_drop})\n{enough}",
            "10m",
            "critical",
            f"A version's accuracy dropped by more than {max_drop} from the previous hours.",
        ),
    ]


def _latency_alert(match: str) -> dict[str, Any]:
    latency = f"{LATENCY}{{{match}}}"
    mean = f"avg_over_time({latency}[1h] offset 5m)"
    spread = f"stddev_over_time({latency}[1h] offset 5m)"
    return _alert(
        "MlcanaryLatencyAnomaly",
        f"{latency} > {mean} + 3 * {spread}\nand {latency} > 1.1 * {mean}",
        "3m",
        "warning",
        "Predict latency is more than 3 standard deviations above its mean of the last hour.",
    )


def _errors_alert(match: str, max_rate: float) -> dict[str, Any]:
    return _alert(
        "MlcanaryServerErrors",
        f"{SERVER_ERRORS}{{{match}}} > {max_rate}",
        "5m",
        "critical",
        f"More than {max_rate:.2%} of a version's requests fail with 5xx.",
    )


def _gpu_alert(match: str) -> dict[str, Any]:
    used = f"mlcanary_gpu_memory_used_bytes{{{match}}}"
    total = f"mlcanary_gpu_memory_total_bytes{{{match}}}"
    return _alert(
        "MlcanaryGpuMemoryNearFull",
        f"max by (namespace, model, version, pod, gpu) ({used} / {total}) > {GPU_MEMORY_FULL}",
        "5m",
        "warning",
        f"A GPU serving the model is more than {GPU_MEMORY_FULL:.0%} full.",
    )


def prometheus_rule(spec: RolloutSpec, namespace: str, *, gpu: bool) -> dict[str, Any]:
    """Thresholds come from the rollout's analysis; the defaults of `RolloutSpec` where a check
    is off (latency and errors are watched regardless), except accuracy, which needs feedback."""
    match = f'namespace="{namespace}",model="{spec.model}"'
    analysis = spec.analysis
    quantile = analysis.latency.quantile if analysis.latency is not None else 0.95
    max_errors = analysis.error_rate.max if analysis.error_rate is not None else 0.01
    alerts = [_latency_alert(match), _errors_alert(match, max_errors)]
    if analysis.accuracy is not None:
        alerts[:0] = _accuracy_alerts(match, analysis.accuracy.max_drop, analysis.min_samples)
    if gpu:
        alerts.append(_gpu_alert(match))
    name = naming.route(spec.model)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(spec.model)},
        "spec": {
            "groups": [
                {"name": f"{name}.recording", "rules": _recording_rules(match, quantile)},
                {"name": f"{name}.alerts", "rules": alerts},
            ]
        },
    }
