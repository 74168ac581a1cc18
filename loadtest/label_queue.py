"""Labels waiting to be posted late, as a labeling pipeline sends them: without throttling the
predictions.

Why a queue of due times rather than a sleeping greenlet per label: a greenlet pool sized by hand
filled up at a long delay and blocked its user, so six users offered 22 predictions a second
instead of the rate asked for. A queue entry is a token and a label (a few hundred bytes), so
the queue can hold rate x delay of them; one sender per user posts each label when it falls
due. When the queue is full a label is dropped and counted, and the user goes on predicting:
the offered rate is what the test is about, and a dropped label is reported, never hidden as a
slowdown.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLOSED_LOOP_CAPACITY", "LabelQueue", "capacity_for"]

CLOSED_LOOP_CAPACITY = 10_000  # per user, when its rate is not known in advance
_HEADROOM = 2.0  # room for bursts above the average rate x delay


def capacity_for(rate_per_user: float, delay_s: float) -> int:
    """How many labels one user may hold: twice what its rate x the delay keeps in flight."""
    if rate_per_user <= 0:
        return CLOSED_LOOP_CAPACITY
    return max(16, math.ceil(_HEADROOM * rate_per_user * delay_s))


@dataclass
class LabelQueue:
    """Labels in the order they fall due (one delay for all, so arrival order is due order)."""

    capacity: int
    dropped: int = 0
    _items: deque[tuple[float, str, Any]] = field(default_factory=deque)

    def put(self, due: float, token: str, label: Any) -> bool:
        """Queue a label; False (and counted) when the queue is full."""
        if len(self._items) >= self.capacity:
            self.dropped += 1
            return False
        self._items.append((due, token, label))
        return True

    def take_due(self, now: float) -> list[tuple[str, Any]]:
        due = []
        while self._items and self._items[0][0] <= now:
            _, token, label = self._items.popleft()
            due.append((token, label))
        return due

    def next_due(self) -> float | None:
        return self._items[0][0] if self._items else None

    def __len__(self) -> int:
        return len(self._items)
