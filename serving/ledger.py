"""The feedback ledger interface: which predictions already received their ground truth.

Counting a label twice would bias accuracy, so every accepted feedback claims its prediction id
first. The ledger must be shared by all replicas that can receive feedback for a model and
survive their restarts; `ledger_sqlite` does that on one machine, `ledger_memory` is the test
double.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["FeedbackLedger"]


class FeedbackLedger(Protocol):
    def claim(self, prediction_id: str, version: str, now: float) -> bool:
        """Record the id; True the first time it is seen, False for a duplicate."""
        ...

    def forget_before(self, cutoff: float) -> int:
        """Drop ids older than ``cutoff``; their tokens have expired, so they cannot recur."""
        ...

    def close(self) -> None: ...
