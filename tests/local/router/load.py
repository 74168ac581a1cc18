"""Continuous load on the router from a few client threads, every answer recorded.

Each answer keeps when its request was sent and when it came back, so a test can take the
requests of one weight setting exactly: those sent after the change returned and answered
before the next change began were balanced under that setting alone, whatever was in flight
around the change. Tests wait for counts of answers, never for durations.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

VERSION_HEADER = "x-mlcanary-version"
CLIENT_TIMEOUT_S = 15.0
WAIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    sent: float
    answered: float
    status: int  # 0: no answer within the client's timeout, or the connection failed
    routed_to: str | None  # the router's header
    answered_by: str | None  # the backend's own body
    error_code: str | None  # the router's or backend's error code; the client's failure


class Load:
    def __init__(self, url: str, clients: int) -> None:
        self._url = url
        self._clients = clients
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _send(self, client: httpx.Client) -> Answer:
        sent = time.monotonic()
        try:
            response = client.post("/predict", json={})
        except httpx.HTTPError as exc:
            return Answer(sent, time.monotonic(), 0, None, None, repr(exc))
        body = response.json()
        return Answer(
            sent,
            time.monotonic(),
            response.status_code,
            response.headers.get(VERSION_HEADER),
            body.get("version"),
            body.get("error", {}).get("code"),
        )

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=CLIENT_TIMEOUT_S, trust_env=False) as client:
            while not self._stop.is_set():
                answer = self._send(client)
                with self._lock:
                    self._answers.append(answer)

    def answers(
        self, sent_after: float = 0.0, answered_before: float = float("inf")
    ) -> list[Answer]:
        with self._lock:
            return [
                a for a in self._answers if a.sent >= sent_after and a.answered <= answered_before
            ]

    def wait_for(self, count: int, sent_after: float) -> None:
        """Until ``count`` requests sent after ``sent_after`` were answered."""
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while len(self.answers(sent_after)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} answers in {WAIT_TIMEOUT_S:g}s")
            time.sleep(0.01)

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self._clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(CLIENT_TIMEOUT_S + 5)


def split(answers: list[Answer]) -> Counter[str | None]:
    return Counter(a.routed_to for a in answers)
