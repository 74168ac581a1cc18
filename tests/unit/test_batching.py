from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from mlcanary.models.predictor import FloatArray, IntArray
from mlcanary.serving.batching import MicroBatcher


class RecordingModel:
    """Labels each row with its first feature, and records the size of every call."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self._gate = gate

    def predict(self, rows: FloatArray) -> IntArray:
        if self._gate is not None:
            self._gate.wait(5)
        self.calls.append(len(rows))
        return rows[:, 0].astype(np.int64)


def _rows(*firsts: int) -> FloatArray:
    return np.array([[f, 0.0] for f in firsts], dtype=np.float64)


def test_each_request_gets_its_own_rows_back() -> None:
    async def scenario() -> tuple[list[list[int]], list[int]]:
        gate = threading.Event()
        model = RecordingModel(gate)
        batcher = MicroBatcher(model.predict, max_rows=100)
        first = asyncio.ensure_future(batcher.predict(_rows(1)))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.predict(_rows(10 * i, 10 * i + 1))) for i in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return [r.tolist() for r in results], model.calls

    results, calls = asyncio.run(scenario())
    assert results == [[1], [0, 1], [10, 11], [20, 21], [30, 31], [40, 41]]
    assert calls == [1, 10]


def test_batches_respect_the_row_limit() -> None:
    async def scenario() -> list[int]:
        gate = threading.Event()
        model = RecordingModel(gate)
        batcher = MicroBatcher(model.predict, max_rows=4)
        futures = [asyncio.ensure_future(batcher.predict(_rows(i, i))) for i in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*futures)
        batcher.close()
        return model.calls

    assert all(size <= 4 for size in asyncio.run(scenario()))


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
        batcher.close()
        labels: list[int] = result.tolist()
        return labels

    assert asyncio.run(scenario()) == [3]
