"""Metrics providers: where a controller reads each version's counters, behind the core's
`mlcanary.rollout.metrics.base.MetricsProvider` port.

One module per provider, named in `mlcanary.rollout.metrics.registry`: `prometheus` (PromQL over
the HTTP API, the real one, local and in a cluster) and `scrape` (the services' own /metrics, for
a machine without a Prometheus server). The test double, `ScriptedProvider`, lives beside the
port.
"""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
