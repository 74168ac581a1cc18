"""Starts `limited_server` as a real subprocess for the block and knows its capacity."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlcanary.serving.launcher import free_port


@dataclass(frozen=True)
class LimitedTarget:
    url: str
    pid: int
    concurrency: int
    service_ms: float

    @property
    def capacity_rps(self) -> float:
        """Requests per second it can complete at most, by construction."""
        return self.concurrency / (self.service_ms / 1000)


@contextmanager
def limited_target(concurrency: int, service_ms: float) -> Iterator[LimitedTarget]:
    port = free_port()
    command = [
        sys.executable, "-m", "tests.loadtest.limited_server", "--port", str(port),
        "--concurrency", str(concurrency), "--service-ms", str(service_ms),
    ]  # fmt: skip
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "the limited server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the limited server never listened"
                time.sleep(0.1)
        yield LimitedTarget(f"http://127.0.0.1:{port}", process.pid, concurrency, service_ms)
    finally:
        process.terminate()
        process.wait(10)
