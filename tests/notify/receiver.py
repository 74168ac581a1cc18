"""A real HTTP server on loopback that keeps every POST it gets: where the tests' webhooks,
Slack and Teams messages go.

It answers each request with the next status of ``answers`` (200 once they are used up), and
while ``held`` it keeps each request waiting until released: a slow or hung service, made
without sleeps. ``answered`` counts the answers sent, so a test can tell that a caller went on
while its request was still waiting.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Received", "Receiver", "receiving"]

_HOLD_LIMIT_S = 60.0  # a held request is answered then anyway, so a failed test cannot hang


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[int] = deque()
        self.answered = 0
        self._released = threading.Event()
        self._released.set()
        self._changed = threading.Condition()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hold(self) -> None:
        """Keep every request waiting, unanswered, until `release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, timeout_s: float = 60.0) -> list[Received]:
        """The requests once there are at least ``count``; AssertionError if they never come."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.received) >= count, timeout_s)
            assert arrived, f"{len(self.received)} requests arrived, expected {count}"
            return list(self.received)

    def take(self, received: Received) -> int:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()
        self._released.wait(_HOLD_LIMIT_S)
        with self._changed:
            return self.answers.popleft() if self.answers else 200

    def mark_answered(self) -> None:
        with self._changed:
            self.answered += 1
            self._changed.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length))  # fmt: skip
        status = self.server.receiver.take(received)
        body = b"ok"
        try:
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            return  # the caller gave up waiting (its timeout): nothing was answered
        self.server.receiver.mark_answered()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what arrived, not a log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
