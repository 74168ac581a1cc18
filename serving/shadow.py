"""Shadow copies: during a rollout's shadow step, the stable version's servers send the canary a
copy of a fraction of the requests they answer, compare its answer with their own and count the
outcome per version pair (`mlcanary.serving.metrics.ShadowMetrics`).

Why the server that answered does it: it still holds its own answer when the canary's comes
back, so the two predictions of one request are paired in memory, without a shared store, and it
works behind any router (`mlcanary.rollout.mirror`). The canary answers a copy like any request,
so its own latency and 5xx counts cover the copies, and the rollout judges them as at any step.

What a client is promised: its answer is stable's, computed before the copy exists and never
changed by it, and the copy never waits on anything in the request's path. After the answer is
built, `ShadowCopier.offer` puts the copy on a bounded queue without waiting (full: the copy is
dropped and counted); a fixed number of sender tasks on the worker's event loop send the queued
copies, each within a strict timeout, and compare the answers. Dropped, failed and timed-out
copies are counted and never compared. What copying can still cost a client is the event loop's
time spent sending copies and reading their answers, at most ``senders`` copies at a time: the
benchmark in docs/shadow.md measures it.

Where a server learns what to do: the model's mirror file (`mirror_file`), which the platform
writes. Only servers of the version it names as stable send copies.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson

from mlcanary.models.task import ClassificationOutput, RegressionOutput
from mlcanary.serving.metrics import FLIP_CLASSES, OTHER_CLASS, REFUSED_CLASS, ShadowMetrics
from mlcanary.serving.mirror_file import MirrorFile, MirrorSetting

__all__ = ["CopyLimits", "ShadowCopier"]

logger = logging.getLogger("mlcanary.serving")
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class CopyLimits:
    """How much copying a worker may do: copies waiting (and their bytes), copies in flight,
    and how long one may take."""

    queue: int = 256
    queue_bytes: int = 32 << 20
    senders: int = 8
    timeout_s: float = 2.0


@dataclass(frozen=True)
class _Copy:
    setting: MirrorSetting
    body: bytes
    answers: Sequence[Any]


def _predictions(response: httpx.Response) -> list[Any] | None:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    answers = document.get("predictions") if isinstance(document, dict) else None
    return answers if isinstance(answers, list) else None


class ShadowCopier:
    """One worker's copies: offered from the request path, sent by background tasks."""

    def __init__(
        self,
        version: str,
        output: ClassificationOutput | RegressionOutput,
        mirror: MirrorFile,
        metrics: ShadowMetrics,
        limits: CopyLimits = CopyLimits(),
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._version = version
        self._output = output
        self._mirror = mirror
        self._metrics = metrics
        self._limits = limits
        self._transport = transport
        self._queue: deque[_Copy] = deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self._senders: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._started: set[str] = set()
        known = output.classes[:FLIP_CLASSES] if isinstance(output, ClassificationOutput) else ()
        self._classes = {label: str(label) for label in known}

    def offer(self, body: bytes, answers: Sequence[Any]) -> None:
        """Queue a copy of an answered request if the mirror says so; never waits, never
        raises into the request."""
        setting = self._mirror.current()
        if setting is None or setting.stable != self._version:
            return
        if setting.fraction < 1 and random.random() >= setting.fraction:  # noqa: S311 (sampling)
            return
        if setting.canary not in self._started:
            self._started.add(setting.canary)
            self._metrics.start(setting.canary, self._output.task)
        full = len(self._queue) >= self._limits.queue
        if full or self._queued_bytes + len(body) > self._limits.queue_bytes:
            self._metrics.copy(setting.canary, "dropped")
            return
        self._queue.append(_Copy(setting, body, answers))
        self._queued_bytes += len(body)
        self._ready.set()
        if not self._senders:
            self._start()

    def _start(self) -> None:
        limits = httpx.Limits(
            max_connections=self._limits.senders, max_keepalive_connections=self._limits.senders
        )
        self._client = httpx.AsyncClient(
            timeout=self._limits.timeout_s, limits=limits, transport=self._transport
        )
        self._senders = [
            asyncio.get_running_loop().create_task(self._send_queued())
            for _ in range(self._limits.senders)
        ]

    async def _send_queued(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            copy = self._queue.popleft()
            self._queued_bytes -= len(copy.body)
            try:
                outcome = await self._send(copy)
            except Exception:  # a copy must never end its sender: count it and go on
                logger.exception("a shadow copy to %s failed", copy.setting.canary)
                outcome = "failed"
            self._metrics.copy(copy.setting.canary, outcome)

    async def _send(self, copy: _Copy) -> str:
        assert self._client is not None
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                response = await self._client.post(
                    f"{copy.setting.url}/predict", content=copy.body, headers=_JSON
                )
        except (TimeoutError, httpx.TimeoutException):
            return "timeout"
        except httpx.HTTPError:
            return "failed"
        if 400 <= response.status_code < 500:
            self._compare(copy, None)
            return "refused"
        answers = _predictions(response) if response.status_code == 200 else None
        if answers is None or len(answers) != len(copy.answers):
            return "failed"
        return "compared" if self._compare(copy, answers) else "failed"

    def _label(self, value: Any) -> str:
        return (
            self._classes.get(value, OTHER_CLASS) if isinstance(value, int | str) else OTHER_CLASS
        )

    def _compare(self, copy: _Copy, answers: list[Any] | None) -> bool:
        """Count one copy's rows; False when its answers cannot be compared with ours. A
        refused copy (``answers`` None) is a disagreement on every row for a classifier, and
        nothing to measure for a regressor."""
        canary = copy.setting.canary
        if isinstance(self._output, ClassificationOutput):
            flips: Counter[tuple[str, str]] = Counter()
            agreed = 0
            for index, ours in enumerate(copy.answers):
                theirs = REFUSED_CLASS if answers is None else answers[index]
                if answers is not None and theirs == ours:
                    agreed += 1
                else:
                    shown = theirs if answers is None else self._label(theirs)
                    flips[self._label(ours), shown] += 1
            self._metrics.classes(canary, agreed, flips)
            return True
        if answers is None:
            return True
        try:
            ours_array = np.asarray(copy.answers, dtype=np.float64)
            theirs_array = np.asarray(answers, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if ours_array.shape != theirs_array.shape:
            return False
        difference = np.abs(theirs_array - ours_array).reshape(len(answers), -1).mean(axis=1)
        self._metrics.differences(canary, difference.tolist())
        return True

    async def close(self) -> None:
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders = []
        if self._client is not None:
            await self._client.aclose()
