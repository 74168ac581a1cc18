"""Metrics providers: where the controller reads each version's counters.

One interface (`base.MetricsProvider`, like Flagger's provider with its query and is-online
check), one module per implementation: `prometheus` (PromQL over the HTTP API), `scrape` (the
services' own /metrics, for a machine without a Prometheus server) and `fake` (the test double).
"""

from mlcanary.rollout.metrics.base import MetricsProvider, MetricsUnavailableError, Target

__all__ = ["MetricsProvider", "MetricsUnavailableError", "Target"]
