"""Labeled traffic: predict a holdout row, then post its true label as feedback.

Run it with the plain ``locust`` command, e.g.
``locust -f loadtest/locustfile.py --host http://127.0.0.1:3000 --headless -u 8 -r 8 -t 30s``.
``MLCANARY_FEEDBACK_RATIO`` (default 1.0) is the share of predictions that get feedback.
"""

from __future__ import annotations

import os
import random

import orjson
from locust import FastHttpUser, task

from mlcanary.loadtest.holdout import labeled_rows

_ROWS = labeled_rows()
_FEEDBACK_RATIO = float(os.environ.get("MLCANARY_FEEDBACK_RATIO", "1.0"))
_HEADERS = {"Content-Type": "application/json"}


class LabeledTrafficUser(FastHttpUser):
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
        if random.random() < _FEEDBACK_RATIO:  # noqa: S311
            body = orjson.dumps({"token": token, "label": row.label}).decode()
            self.client.post("/feedback", data=body, headers=_HEADERS, name="/feedback")
