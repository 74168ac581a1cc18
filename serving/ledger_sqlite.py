"""A ledger in one SQLite file, shared by every worker and replica on a machine.

SQLite's primary key makes the claim atomic across processes without a lock of our own, and WAL
mode lets readers and the single writer proceed together. ``synchronous=NORMAL`` skips an fsync
per claim: a power cut can forget the last claims, which could let a replayed token count twice;
a crash of the process cannot.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["SqliteLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_claims (
    prediction_id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    claimed_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_claims_age ON feedback_claims (claimed_at);
"""


class SqliteLedger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def claim(self, prediction_id: str, version: str, now: float) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO feedback_claims VALUES (?, ?, ?)",
                (prediction_id, version, now),
            )
            return cursor.rowcount == 1

    def forget_before(self, cutoff: float) -> int:
        with self._lock:
            cursor = self._db.execute("DELETE FROM feedback_claims WHERE claimed_at < ?", (cutoff,))
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
