from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mlcanary.models.predictor import FloatArray, IntArray
from mlcanary.serving.batching import MicroBatcher


class RecordingModel:
    """Labels each row with its first feature, and records the size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, rows: FloatArray) -> IntArray:
        self.calls.append(len(rows))
        return rows[:, 0].astype(np.int64)


def _rows(*firsts: int) -> FloatArray:
    return np.array([[f, 0.0] for f in firsts], dtype=np.float64)


def test_each_request_gets_its_own_rows_back() -> None:
    async def scenario() -> tuple[list[list[int]], list[int]]:
        model = RecordingModel()
        batcher = MicroBatcher(model.predict, max_rows=100)
        alone = await batcher.predict(_rows(1))
        together = [
            asyncio.ensure_future(batcher.predict(_rows(10 * i, 10 * i + 1))) for i in range(5)
        ]
        results = [alone, *await asyncio.gather(*together)]
        return [r.tolist() for r in results], model.calls

    results, calls = asyncio.run(scenario())
    assert results == [[1], [0, 1], [10, 11], [20, 21], [30, 31], [40, 41]]
    assert calls == [1, 10], "requests queued together must share one model call"


def test_batches_respect_the_row_limit() -> None:
    async def scenario() -> list[int]:
        model = RecordingModel()
        batcher = MicroBatcher(model.predict, max_rows=4)
        futures = [asyncio.ensure_future(batcher.predict(_rows(i, i))) for i in range(5)]
        await asyncio.gather(*futures)
        return model.calls

    assert asyncio.run(scenario()) == [4, 4, 2]


def test_a_failing_model_call_fails_its_requests_and_the_next_call_works() -> None:
    def flaky(rows: FloatArray) -> IntArray:
        if rows[0, 0] < 0:
            raise RuntimeError("model exploded")
        return rows[:, 0].astype(np.int64)

    async def scenario() -> list[int]:
        batcher = MicroBatcher(flaky, max_rows=10)
        with pytest.raises(RuntimeError, match="exploded"):
            await batcher.predict(_rows(-1))
        result = await batcher.predict(_rows(3))
        labels: list[int] = result.tolist()
        return labels

    assert asyncio.run(scenario()) == [3]
