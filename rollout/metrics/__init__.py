"""The metrics-provider port: where the controller reads each version's counters.

One interface (`base.MetricsProvider`, like Flagger's provider), its test double (`fake`), and
the registry of provider names (`registry`); the providers themselves are the modules of
`mlcanary.metrics`.
"""

from mlcanary.rollout.metrics.base import MetricsProvider, MetricsUnavailableError, Target

__all__ = ["MetricsProvider", "MetricsUnavailableError", "Target"]
