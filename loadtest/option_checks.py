"""Range checks of the locustfiles' options, apart from their registration (`options`) so they
can be checked without importing Locust, which patches the whole process for gevent."""

from __future__ import annotations

from typing import Any

__all__ = ["option_problems"]


def option_problems(options: Any) -> list[str]:
    """Each out-of-range option, named as it is spelt on the command line."""
    problems = []
    if not 0 <= options.feedback_ratio <= 1:
        problems.append(f"--feedback-ratio must be within 0..1, got {options.feedback_ratio}")
    for name in ("feedback_delay_s", "rate_per_user", "p95_budget_ms", "max_pending_feedback"):
        if getattr(options, name) < 0:
            problems.append(
                f"--{name.replace('_', '-')} must be >= 0, got {getattr(options, name)}"
            )
    for name in (
        "window_s",
        "shape_peak_users",
        "shape_duration_s",
        "shape_steps",
    ):
        if getattr(options, name) <= 0:
            problems.append(f"--{name.replace('_', '-')} must be > 0, got {getattr(options, name)}")
    if not 0 <= options.max_failure_ratio <= 1:
        problems.append(f"--max-failure-ratio must be within 0..1, got {options.max_failure_ratio}")
    return problems
