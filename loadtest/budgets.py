"""The budgets a CI load test must stay within; checked by `budget_gate` when Locust quits, and
kept free of Locust so it can be checked without patching the process for gevent."""

from __future__ import annotations

__all__ = ["budget_breaches"]


def budget_breaches(
    p95_ms: float, failure_ratio: float, p95_budget_ms: float, max_failure_ratio: float
) -> list[str]:
    """One sentence per broken budget; a p95 budget of 0 means no latency budget."""
    breaches = []
    if p95_budget_ms > 0 and p95_ms > p95_budget_ms:
        breaches.append(f"p95 {p95_ms:.0f} ms exceeds the budget of {p95_budget_ms:.0f} ms")
    if failure_ratio > max_failure_ratio:
        breaches.append(
            f"failure ratio {failure_ratio:.4f} exceeds the budget of {max_failure_ratio:.4f}"
        )
    return breaches
