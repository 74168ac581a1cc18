"""Inside Locust: the ``/predict`` statistics of every window, as JSON lines the search reads.

Each process that runs users (the local runner, or every worker) counts its own requests with
its own clock; the capacity search adds the processes up window by window. Reading Locust's
stats on the master instead would see workers' reports arrive every few seconds at arbitrary
moments, which makes per-window rates jump by a whole report; and a worker's own stats are
emptied at each report, so they cannot be differenced either. Counting from the ``request``
event avoids both.

A local runner appends its windows to its own file. A worker sends each window to its master
(a Locust custom message), which writes one file per worker: workers may run on other machines
or in pods, where the search could never read their files. Every window also carries the CPU
its process spent in it, measured by that process itself, so the search can tell a saturated
generator on any machine; Locust's own worker CPU (``cpu_usage`` in its heartbeats) is averaged
over 10 s, longer than a window, and would read a level's first windows from the one before.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from mlcanary.loadtest.window import Window
from mlcanary.loadtest.window_files import Record, store_worker_window, window_file, write_record

__all__ = ["PREDICT_NAME", "WINDOW_MESSAGE", "WindowRecorder", "receive_windows", "record_windows"]

PREDICT_NAME = "/predict"
WINDOW_MESSAGE = "mlcanary_window"


class WindowRecorder:
    def __init__(self, window_s: float, sink: Callable[[Record], None]) -> None:
        self.window_s = window_s
        self.sink = sink
        self.requests = 0
        self.failures = 0
        self.times: Counter[int] = Counter()
        self.process = psutil.Process()

    def on_request(self, name: str, response_time: float, exception: object, **_: Any) -> None:
        if name != PREDICT_NAME:
            return
        self.requests += 1
        self.failures += exception is not None
        self.times[round(response_time)] += 1

    def _cpu_s(self) -> float:
        cpu = self.process.cpu_times()
        return float(cpu.user + cpu.system)

    def run(self) -> None:
        started, cpu_started = time.monotonic(), self._cpu_s()
        while True:
            gevent.sleep(max(0.0, started + self.window_s - time.monotonic()))
            now, cpu_now = time.monotonic(), self._cpu_s()
            window = Window(now - started, self.requests, self.failures, dict(self.times))
            cpu_pct = 100 * (cpu_now - cpu_started) / window.duration_s
            self.requests, self.failures, self.times = 0, 0, Counter()
            started, cpu_started = now, cpu_now
            self.sink(window.to_json() | {"cpu_pct": round(cpu_pct, 1)})


def _on_worker_window(environment: Any, msg: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    store_worker_window(options.windows_dir if options else "", msg.node_id, msg.data)


@events.init.add_listener  # type: ignore[untyped-decorator]
def receive_windows(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(WINDOW_MESSAGE, _on_worker_window)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def record_windows(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.windows_dir:
        return
    runner = environment.runner
    directory = options.windows_dir
    sink: Callable[[Record], None]
    if isinstance(runner, WorkerRunner):

        def sink(record: Record) -> None:
            runner.send_message(WINDOW_MESSAGE, {"windows_dir": directory, "record": record})

    elif isinstance(runner, LocalRunner):
        Path(directory).mkdir(parents=True, exist_ok=True)
        path = window_file(Path(directory), "local")

        def sink(record: Record) -> None:
            write_record(path, record)

    else:
        return
    recorder = WindowRecorder(options.window_s, sink)
    environment.events.request.add_listener(recorder.on_request)
    greenlet = gevent.spawn(recorder.run)

    def stop_recording(**_: Any) -> None:
        """A worker serves many levels: its recorder and listeners go with the level."""
        greenlet.kill(block=False)
        environment.events.request.remove_listener(recorder.on_request)
        environment.events.test_stop.remove_listener(stop_recording)

    environment.events.test_stop.add_listener(stop_recording)
