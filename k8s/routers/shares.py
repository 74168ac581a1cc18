"""Whole-number shares of a total, by the largest-remainder method.

Why largest remainder: the shares always add up to the total exactly (Gateway API and Istio
weights to 100, replica counts to the replica total), and each is the exact share rounded down
or up, never further off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["apportion"]


def apportion(total: int, weights: Sequence[float], *, keep_positive: bool = False) -> list[int]:
    """``total`` split in proportion to ``weights`` (not all zero).

    ``keep_positive``: every positive weight gets at least 1 when the total allows, taken from
    the largest shares: a version given any traffic keeps a replica to serve it.
    """
    whole = sum(weights)
    if whole <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0 and not all 0, not {list(weights)}")
    exact = [total * w / whole for w in weights]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for index in by_remainder[: total - sum(shares)]:
        shares[index] += 1
    if keep_positive:
        for index, weight in enumerate(weights):
            if weight > 0 and shares[index] == 0:
                donor = max(range(len(shares)), key=lambda i: shares[i])
                if shares[donor] > 1:
                    shares[donor] -= 1
                    shares[index] = 1
    return shares
