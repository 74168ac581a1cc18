"""Adaptive micro-batching: concurrent requests share one model call.

A model call has a fixed cost (input validation in scikit-learn, kernel launches in torch) that
dwarfs the per-row cost for small inputs. Requests that arrive while a call runs wait in their
sockets; the event loop reads them all before the next call, which takes all their rows at once.
An idle server therefore adds no waiting time, and a busy one batches in proportion to its load.

The model runs on the event loop's thread, not in a worker thread: with a second thread, every
socket write of the loop released the GIL and waited up to the 5 ms switch interval to get it
back from the model thread (Python's convoy effect), which measured as a long latency tail.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from mlcanary.models.predictor import FloatArray, IntArray

__all__ = ["MicroBatcher"]


class MicroBatcher:
    def __init__(self, predict: Callable[[FloatArray], IntArray], max_rows: int) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._pending: deque[tuple[FloatArray, asyncio.Future[IntArray]]] = deque()
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None

    async def predict(self, rows: FloatArray) -> IntArray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IntArray] = loop.create_future()
        self._pending.append((rows, future))
        if not self._draining:
            self._draining = True
            self._drain_task = loop.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[FloatArray, asyncio.Future[IntArray]]]:
        taken = [self._pending.popleft()]
        size = len(taken[0][0])
        while self._pending and size + len(self._pending[0][0]) <= self._max_rows:
            rows, future = self._pending.popleft()
            taken.append((rows, future))
            size += len(rows)
        return taken

    async def _drain(self) -> None:
        try:
            while self._pending:
                taken = self._take()
                live = [(rows, fut) for rows, fut in taken if not fut.cancelled()]
                if not live:
                    continue
                batch = live[0][0] if len(live) == 1 else np.concatenate([r for r, _ in live])
                try:
                    labels = self._predict(batch)
                except Exception as exc:
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for rows, future in live:
                    if not future.done():
                        future.set_result(labels[start : start + len(rows)])
                    start += len(rows)
        finally:
            self._draining = False
