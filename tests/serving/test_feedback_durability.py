"""Feedback across restarts, replicas and versions, against real servers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.feedback import labeler_headers
from tests.serving.promtext import metric

pytestmark = pytest.mark.integration

ROW = [3.0] * 64


def _tokens(url: str, n: int) -> tuple[list[str], list[int]]:
    body = httpx.post(f"{url}/predict", json={"instances": [ROW] * n}, timeout=30).json()
    return body["feedback_tokens"], body["predictions"]


def test_feedback_after_a_restart_is_counted_once(trained, start_server) -> None:
    with start_server("digits:v1") as url:
        tokens, labels = _tokens(url, 2)
        first = httpx.post(
            f"{url}/feedback",
            headers=labeler_headers(),
            json={"token": tokens[0], "label": labels[0]},
        )
        assert first.status_code == 200
    with start_server("digits:v1") as url:
        late = httpx.post(
            f"{url}/feedback",
            headers=labeler_headers(),
            json={"token": tokens[1], "label": labels[1]},
        )
        assert late.status_code == 200
        replay = httpx.post(
            f"{url}/feedback",
            headers=labeler_headers(),
            json={"token": tokens[0], "label": labels[0]},
        )
        assert replay.status_code == 409
        assert metric(url, "mlcanary_feedback_total", version="v1") == 1


def test_two_workers_share_the_ledger_and_the_metrics(trained, start_server) -> None:
    with start_server("digits:v1", workers=2) as url:
        tokens, labels = _tokens(url, 20)
        posts = [(t, y) for t, y in zip(tokens, labels, strict=True)] * 3
        with ThreadPoolExecutor(8) as pool, httpx.Client(timeout=30) as client:
            codes = list(
                pool.map(
                    lambda p: (
                        client.post(
                            f"{url}/feedback",
                            headers=labeler_headers(),
                            json={"token": p[0], "label": p[1]},
                        ).status_code
                    ),
                    posts,
                )
            )
        assert codes.count(200) == 20
        assert codes.count(409) == 40
        assert metric(url, "mlcanary_feedback_total", version="v1", outcome="correct") == 20
        assert metric(url, "mlcanary_feedback_rejected_total", reason="duplicate") == 40


def test_feedback_reaching_another_version_counts_for_the_predicting_one(
    trained, start_server
) -> None:
    with start_server("digits:v1") as v1_url:
        tokens, labels = _tokens(v1_url, 1)
    with start_server("digits:v2") as v2_url:
        answer = httpx.post(
            f"{v2_url}/feedback",
            headers=labeler_headers(),
            json={"token": tokens[0], "label": labels[0]},
        )
        assert answer.json()["version"] == "v1"
        assert metric(v2_url, "mlcanary_feedback_total", version="v1", outcome="correct") == 1
        assert metric(v2_url, "mlcanary_feedback_total", version="v2") == 0


def test_overload_is_answered_503_and_counted(trained, start_server) -> None:
    with start_server("digits:v1", MLCANARY_MAX_INFLIGHT="1") as url:
        body = {"instances": [ROW] * 256}
        with ThreadPoolExecutor(16) as pool, httpx.Client(timeout=30) as client:
            answers = list(pool.map(lambda _: client.post(f"{url}/predict", json=body), range(64)))
        refused = [a for a in answers if a.status_code == 503]
        assert refused, "64 concurrent requests against an in-flight limit of 1 were all admitted"
        assert {a.status_code for a in answers} <= {200, 503}
        assert refused[0].headers["Retry-After"] == "1"
        assert refused[0].json()["error"]["code"] == "overloaded"
        assert metric(url, "mlcanary_overload_rejections_total") == len(refused)
        assert metric(url, "mlcanary_http_requests_total", code="503") == len(refused)


def test_two_servers_on_one_machine_keep_their_own_metrics(trained, start_server) -> None:
    with start_server("digits:v1") as v1_url, start_server("digits:v2") as v2_url:
        httpx.post(f"{v1_url}/predict", json={"instances": [ROW] * 3})
        httpx.post(f"{v2_url}/predict", json={"instances": [ROW] * 5})
        assert metric(v1_url, "mlcanary_predictions_total", version="v1") == 3
        assert metric(v1_url, "mlcanary_predictions_total", version="v2") == 0
        assert metric(v2_url, "mlcanary_predictions_total", version="v2") == 5
        assert metric(v2_url, "mlcanary_model_info", version="v2", framework="torch") == 1
