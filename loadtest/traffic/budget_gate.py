"""CI gating: a Locust run fails (exit code 1) when it broke its latency or failure budget.

Locust's own ``--exit-code-on-error`` only looks at failures; a pipeline also needs a latency
budget, and needs to be told which budget was broken and by how much.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import events
from locust.runners import WorkerRunner

from mlcanary.loadtest.budgets import budget_breaches

__all__ = ["gate_on_budgets"]

log = logging.getLogger(__name__)


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def gate_on_budgets(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or environment.runner is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        return  # the master holds the totals over all workers and decides
    total = environment.stats.total
    breaches = budget_breaches(
        total.get_response_time_percentile(0.95) or 0.0,
        total.fail_ratio,
        options.p95_budget_ms,
        options.max_failure_ratio,
    )
    for breach in breaches:
        log.error("budget broken: %s", breach)
    if breaches:
        environment.process_exit_code = 1
