from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest

from mlcanary.models.schema import Batch
from mlcanary.models.task import Predictions
from mlcanary.serving.batching import MicroBatcher


class RecordingModel:
    """Predicts each row's first feature, records the size of every call, and raises on a batch
    holding a negative first feature (a poison row)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, rows: Batch) -> Predictions:
        assert isinstance(rows, np.ndarray)
        self.calls.append(len(rows))
        if (rows[:, 0] < 0).any():
            raise ValueError("Input contains infinity or a value too large")
        return Predictions(rows[:, 0].astype(np.int64).tolist())


def _rows(*firsts: int) -> npt.NDArray[np.float64]:
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
        return [r.values for r in results], model.calls

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


def test_a_poison_request_fails_alone_and_its_neighbours_get_their_answers() -> None:
    async def scenario() -> tuple[list[object], list[int]]:
        model = RecordingModel()
        batcher = MicroBatcher(model.predict, max_rows=100)
        requests = [_rows(1), _rows(2, 3), _rows(-1), _rows(4)]
        futures = [asyncio.ensure_future(batcher.predict(rows)) for rows in requests]
        done = await asyncio.gather(*futures, return_exceptions=True)
        return [d if isinstance(d, BaseException) else d.values for d in done], model.calls

    results, calls = asyncio.run(scenario())
    assert results[0] == [1]
    assert results[1] == [2, 3]
    assert isinstance(results[2], ValueError)
    assert results[3] == [4]
    assert calls == [5, 1, 2, 1, 1], "one failed shared call, then each request alone"


def test_a_failing_model_call_fails_its_request_and_the_next_call_works() -> None:
    async def scenario() -> list[int]:
        batcher = MicroBatcher(RecordingModel().predict, max_rows=10)
        with pytest.raises(ValueError, match="too large"):
            await batcher.predict(_rows(-1))
        result = await batcher.predict(_rows(3))
        return list(result.values)

    assert asyncio.run(scenario()) == [3]
