"""Cost of a million requests on a node, from its hourly price and its measured capacity.

A node running at its capacity serves capacity x 3600 requests an hour, so a million requests
cost price / (capacity x 3600) x 1e6: the price of the capacity actually usable within the
objective, not of a nominal peak. Prices come from flags or a small YAML file keyed by label.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["cost_per_million", "load_prices"]


def cost_per_million(hourly_price: float, capacity_rps: float | None) -> float | None:
    if hourly_price < 0:
        raise ValueError(f"hourly price must be >= 0, got {hourly_price}")
    if capacity_rps is None or capacity_rps <= 0:
        return None
    return hourly_price / (capacity_rps * 3600) * 1e6


def load_prices(path: Path, labels: list[str]) -> dict[str, float]:
    """``{label: hourly price}`` for each label, e.g. ``cpu: 0.10`` and ``gpu: 2.50``."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of label to hourly price, e.g. 'cpu: 0.10'")
    prices = {}
    for label in labels:
        if label not in document:
            raise ValueError(f"{path}: no price for {label!r}")
        value = document[label]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{path}: {label}: expected a price >= 0, got {value!r}")
        prices[label] = float(value)
    return prices
