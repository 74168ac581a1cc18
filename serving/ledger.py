"""The feedback ledger: which predictions already received their ground truth.

Counting a label twice would bias accuracy, so every accepted feedback claims its prediction id
first, and is counted only once the claim is recorded. The ledger must be shared by every
replica that can receive feedback for a model and survive their restarts. One module per
implementation: `ledger_sqlite` (one file, shared by every process on a machine: the
single-machine default), `ledger_redis` (a Redis server, shared by replicas on many machines:
pods), `ledger_memory` (the test double). `open_ledger` chooses by the ledger's URL.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["LEDGERS", "FeedbackLedger", "LedgerUnavailableError", "open_ledger"]


class LedgerUnavailableError(RuntimeError):
    """The ledger cannot record a claim now (its server is down or slow): the feedback is
    refused, never counted unrecorded, and the client is told to come back."""


class FeedbackLedger(Protocol):
    def claim(self, prediction_id: str, version: str, now: float) -> bool:
        """Record the id; True the first time it is seen, False for a duplicate. Raises
        LedgerUnavailableError when it cannot tell."""
        ...

    def forget_before(self, cutoff: float) -> int:
        """Drop ids older than ``cutoff``; their tokens have expired, so they cannot recur."""
        ...

    def close(self) -> None: ...


# URL scheme -> the module defining ``open(url, path, ttl_s)``.
LEDGERS = {
    "redis": "mlcanary.serving.ledger_redis",
    "rediss": "mlcanary.serving.ledger_redis",
}


def open_ledger(url: str | None, path: Path, ttl_s: float) -> FeedbackLedger:
    """The ledger at ``url`` (``redis://host:port/db``), or the SQLite file at ``path``."""
    if url is None:
        from mlcanary.serving.ledger_sqlite import SqliteLedger

        return SqliteLedger(path)
    scheme = urlsplit(url).scheme
    if scheme not in LEDGERS:
        raise ValueError(f"ledger URL {url!r}: the scheme is one of {', '.join(LEDGERS)}")
    ledger: FeedbackLedger = importlib.import_module(LEDGERS[scheme]).open(url, ttl_s)
    return ledger
