"""Inside Locust: append the ``/predict`` statistics of every window to a JSON-lines file.

Each process that runs users (the local runner, or every worker) counts its own requests with
its own clock and writes its own file; the capacity search adds the files up window by window.
Reading Locust's stats on the master instead would see workers' reports arrive every few
seconds at arbitrary moments, which makes per-window rates jump by a whole report; and a
worker's own stats are emptied at each report, so they cannot be differenced either. Counting
from the ``request`` event avoids both.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events
from locust.runners import LocalRunner, WorkerRunner

from mlcanary.loadtest.window import Window

__all__ = ["PREDICT_NAME", "WindowRecorder", "record_windows"]

PREDICT_NAME = "/predict"


class WindowRecorder:
    def __init__(self, path: Path, window_s: float) -> None:
        self.path = path
        self.window_s = window_s
        self.requests = 0
        self.failures = 0
        self.times: Counter[int] = Counter()

    def on_request(self, name: str, response_time: float, exception: object, **_: Any) -> None:
        if name != PREDICT_NAME:
            return
        self.requests += 1
        self.failures += exception is not None
        self.times[round(response_time)] += 1

    def run(self) -> None:
        started = time.monotonic()
        with self.path.open("ab") as out:
            while True:
                gevent.sleep(max(0.0, started + self.window_s - time.monotonic()))
                now = time.monotonic()
                window = Window(now - started, self.requests, self.failures, dict(self.times))
                self.requests, self.failures, self.times = 0, 0, Counter()
                started = now
                out.write(orjson.dumps(window.to_json()) + b"\n")
                out.flush()


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def record_windows(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.windows_dir:
        return
    if not isinstance(environment.runner, LocalRunner | WorkerRunner):
        return
    directory = Path(options.windows_dir)
    directory.mkdir(parents=True, exist_ok=True)
    recorder = WindowRecorder(directory / f"windows-{os.getpid()}.jsonl", options.window_s)
    environment.events.request.add_listener(recorder.on_request)
    greenlet = gevent.spawn(recorder.run)
    environment.events.test_stop.add_listener(lambda **_: greenlet.kill(block=False))
