"""Adaptive micro-batching: concurrent requests share one model call, and one request's bad rows
never fail another's.

A model call has a fixed cost (input validation in scikit-learn, kernel launches in torch) that
dwarfs the per-row cost for small inputs. Requests that arrive while a call runs wait in their
sockets; the event loop reads them all before the next call, which takes all their rows at once.
An idle server therefore adds no waiting time, and a busy one batches in proportion to its load.

When the model raises on a batch of several requests, each of them is run again alone: the
request whose rows made the model raise fails (with the model's own exception), and its
neighbours get their answers. Without this, one poison row in a busy server fails every request
that happened to share its call.

The model runs on the event loop's thread, not in a worker thread: with a second thread, every
socket write of the loop released the GIL and waited up to the 5 ms switch interval to get it
back from the model thread (Python's convoy effect), which measured as a long latency tail.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from mlcanary.models.schema import Batch, batch_rows, concat_batches
from mlcanary.models.task import Predictions

__all__ = ["MicroBatcher"]

_Pending = tuple[Batch, "asyncio.Future[Predictions]"]


class MicroBatcher:
    def __init__(self, predict: Callable[[Batch], Predictions], max_rows: int) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._pending: deque[_Pending] = deque()
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None

    async def predict(self, rows: Batch) -> Predictions:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Predictions] = loop.create_future()
        self._pending.append((rows, future))
        if not self._draining:
            self._draining = True
            self._drain_task = loop.create_task(self._drain())
        return await future

    def _take(self) -> list[_Pending]:
        taken = [self._pending.popleft()]
        size = batch_rows(taken[0][0])
        while self._pending and size + batch_rows(self._pending[0][0]) <= self._max_rows:
            rows, future = self._pending.popleft()
            taken.append((rows, future))
            size += batch_rows(rows)
        return taken

    def _run(self, live: list[_Pending]) -> None:
        batch = concat_batches([rows for rows, _ in live])
        try:
            predictions = self._predict(batch)
        except Exception as exc:
            if len(live) > 1:  # find the request that made the model raise: each alone
                for one in live:
                    self._run([one])
                return
            if not live[0][1].done():
                live[0][1].set_exception(exc)
            return
        start = 0
        for rows, future in live:
            stop = start + batch_rows(rows)
            if not future.done():
                future.set_result(predictions.rows(start, stop))
            start = stop

    async def _drain(self) -> None:
        try:
            while self._pending:
                live = [(rows, fut) for rows, fut in self._take() if not fut.cancelled()]
                if live:
                    self._run(live)
        finally:
            self._draining = False
