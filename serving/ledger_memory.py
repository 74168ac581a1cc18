"""In-process ledger: a test double, and a choice for a single worker that may forget on restart."""

from __future__ import annotations

__all__ = ["MemoryLedger"]


class MemoryLedger:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def claim(self, prediction_id: str, version: str, now: float) -> bool:
        if prediction_id in self._seen:
            return False
        self._seen[prediction_id] = now
        return True

    def forget_before(self, cutoff: float) -> int:
        old = [key for key, seen_at in self._seen.items() if seen_at < cutoff]
        for key in old:
            del self._seen[key]
        return len(old)

    def close(self) -> None:
        self._seen.clear()
