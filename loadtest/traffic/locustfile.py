"""Labeled traffic: predict a holdout row, then post its true label as feedback.

Run it with the plain ``locust`` command (web UI, or headless), e.g.
``locust -f loadtest/traffic/locustfile.py --host http://127.0.0.1:3000 --headless -u 8 -t 30s``.
Options of its own (in the web UI's start form too; docs/capacity.md): ``--feedback-ratio``,
``--feedback-delay-s`` (labels that arrive late, as in production), ``--rate-per-user`` (open-loop
pacing for the capacity search), ``--p95-budget-ms`` and ``--max-failure-ratio`` (CI gating).
Load shapes: ``locustfile_step.py``, ``locustfile_ramp.py``, ``locustfile_spike.py``.
Feedback is posted with the labeler key (``MLCANARY_LABELER_KEY``, else the key file of this
machine's ``MLCANARY_HOME``), as the labeling pipeline would.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import gevent
import httpx
import orjson
from locust import FastHttpUser, events, task

from mlcanary.loadtest.label_queue import LabelQueue, capacity_for
from mlcanary.loadtest.labeled import LabeledRow, digits_rows, rows_from_file

# Imported for their Locust event listeners: options, CI budgets, per-window statistics.
from mlcanary.loadtest.traffic import budget_gate, options, window_recorder  # noqa: F401
from mlcanary.settings import KeySettings, SettingsError

__all__ = ["LabeledTrafficUser", "load_rows"]

_ROWS: list[LabeledRow] = []
_HEADERS = {"Content-Type": "application/json"}
_FEEDBACK_HEADERS: dict[str, str] = {}


class LabelDroppedError(Exception):
    """A label the queue had no room for: reported as a failed DROPPED /feedback request."""


@events.init.add_listener  # type: ignore[untyped-decorator]
def load_rows(environment: Any, **_kwargs: Any) -> None:
    """The labeled rows to send: ``--data`` shaped by the served version's schema, or the digits
    holdout. Loaded once per Locust process (each worker reads the file itself, so in distributed
    mode it must be where the workers run).

    Loading blocks for seconds before gevent's loop has ever run; the loop's cached clock is then
    that stale, and Locust's --run-time timer would fire that much early: it is refreshed."""
    opts = environment.parsed_options
    data = getattr(opts, "data", "") if opts is not None else ""
    if data and environment.host:
        try:
            _ROWS[:] = rows_from_file(Path(data), opts.label_column, environment.host)
        except (ValueError, OSError, httpx.HTTPError) as exc:
            raise SystemExit(f"--data {data}: {exc}") from None
    else:
        _ROWS[:] = digits_rows()
    try:
        _FEEDBACK_HEADERS.update(_HEADERS | KeySettings.from_env().labeler_headers())
    except SettingsError as exc:
        raise SystemExit(str(exc)) from None
    gevent.get_hub().loop.update_now()


class LabeledTrafficUser(FastHttpUser):
    """One client: a prediction, then (for ``--feedback-ratio`` of them) its true label.

    With ``--rate-per-user r`` each user starts its task every 1/r seconds (N users: N x r a
    second; a per-user rate because Locust's workers never learn the total user count), on a
    fixed schedule from a random phase, so that users do not fire in lockstep: an
    approximation of open-loop arrivals that holds while responses take less than 1/r seconds.
    Delayed labels wait in a queue per user (`mlcanary.loadtest.label_queue`), posted by one
    sender greenlet as they fall due; a full queue drops a label and reports it, so a long delay
    never slows the predictions.
    """

    _period_s = 0.0
    _next_start = 0.0

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self._feedback_ratio = opts.feedback_ratio if opts else 1.0
        self._feedback_delay_s = opts.feedback_delay_s if opts else 0.0
        rate = opts.rate_per_user if opts else 0.0
        capacity = opts.max_pending_feedback if opts and opts.max_pending_feedback else 0
        self._labels = LabelQueue(capacity or capacity_for(rate, self._feedback_delay_s))
        self._sender = gevent.spawn(self._send_due) if self._feedback_delay_s > 0 else None
        if opts is not None and opts.rate_per_user > 0:
            self._period_s = 1 / opts.rate_per_user
            gevent.sleep(random.uniform(0, self._period_s))  # noqa: S311 - a phase, not a secret
            self._next_start = time.perf_counter()

    def on_stop(self) -> None:
        if self._sender is not None:
            self._sender.kill(block=False)

    def wait_time(self) -> float:
        """The next start on this user's schedule; a start already missed is not made up, so
        a slow target shows as an achieved rate below the offered one, not as bursts."""
        if self._period_s == 0:
            return 0.0
        now = time.perf_counter()
        self._next_start = max(self._next_start + self._period_s, now)
        return self._next_start - now

    @task
    def predict_then_feedback(self) -> None:
        row = random.choice(_ROWS)  # noqa: S311 - sampling, not security
        with self.client.post(
            "/predict", data=row.body, headers=_HEADERS, name="/predict", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"predict answered {response.status_code}")
                return
            token = orjson.loads(response.content)["feedback_tokens"][0]
        if random.random() >= self._feedback_ratio:  # noqa: S311
            return
        if self._feedback_delay_s == 0:
            self._feedback(token, row.label)
        elif not self._labels.put(time.monotonic() + self._feedback_delay_s, token, row.label):
            self.environment.events.request.fire(
                request_type="DROPPED",
                name="/feedback",
                response_time=0,
                response_length=0,
                exception=LabelDroppedError(
                    f"{self._labels.capacity} labels already waiting (--max-pending-feedback)"
                ),
                context={},
            )

    def _send_due(self) -> None:
        """Post each queued label when it falls due, for as long as the user runs."""
        while True:
            for token, label in self._labels.take_due(time.monotonic()):
                self._feedback(token, label)
            due = self._labels.next_due()
            gevent.sleep(0.05 if due is None else max(due - time.monotonic(), 0.0))

    def _feedback(self, token: str, label: Any) -> None:
        body = orjson.dumps({"token": token, "label": label}).decode()
        self.client.post("/feedback", data=body, headers=_FEEDBACK_HEADERS, name="/feedback")
