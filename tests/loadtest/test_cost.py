from __future__ import annotations

from pathlib import Path

import pytest

from mlcanary.loadtest.cost import cost_per_million, load_prices


@pytest.mark.parametrize(
    ("price", "capacity", "cost"),
    [
        (0.10, 100.0, 0.10 / 360_000 * 1e6),
        (2.50, 1000.0, 2.50 / 3_600_000 * 1e6),
        (3.60, 1.0, 1000.0),  # 3600 requests an hour for 3.60: a thousandth each
        (1.0, None, None),
        (1.0, 0.0, None),
    ],
)
def test_cost_per_million_requests(price, capacity, cost) -> None:
    assert cost_per_million(price, capacity) == (pytest.approx(cost) if cost else None)


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match="hourly price"):
        cost_per_million(-1.0, 10.0)


def test_prices_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu: 0.10\ngpu: 2.5\nunused: 9\n")
    assert load_prices(path, ["cpu", "gpu"]) == {"cpu": 0.10, "gpu": 2.5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu: 0.10\n", "no price for 'gpu'"),
        ("cpu: 0.10\ngpu: cheap\n", "gpu: expected a price >= 0, got 'cheap'"),
        ("cpu: 0.10\ngpu: -1\n", "gpu: expected a price >= 0"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_bad_price_files_name_the_label(tmp_path: Path, text, message) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_prices(path, ["cpu", "gpu"])
