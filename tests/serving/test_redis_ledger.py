"""Feedback counted once across replicas on a shared Redis ledger, against a real redis-server
and real servers; and what happens when Redis is down."""

from __future__ import annotations

import threading

import httpx
import pytest

from mlcanary.serving.ledger import LedgerUnavailableError, open_ledger
from tests.conftest import RedisServer, StartServer
from tests.feedback import labeler_headers
from tests.serving.promtext import metric

ROW = [3.0] * 64


def test_a_claim_is_made_once_and_refused_when_redis_is_gone(
    redis_server: RedisServer, tmp_path
) -> None:
    ledger = open_ledger(redis_server.url, tmp_path / "unused.sqlite", ttl_s=60)
    assert ledger.claim("p1", "v1", 0.0) is True
    assert ledger.claim("p1", "v2", 0.0) is False
    assert ledger.claim("p2", "v1", 0.0) is True
    ledger.close()
    redis_server.stop()
    unreachable = open_ledger(redis_server.url, tmp_path / "unused.sqlite", ttl_s=60)
    with pytest.raises(LedgerUnavailableError, match="did not answer"):
        unreachable.claim("p3", "v1", 0.0)
    unreachable.close()


def _post_together(urls: tuple[str, ...], body: dict[str, object]) -> list[int]:
    """The same feedback posted to each server at the same instant; their status codes."""
    start = threading.Barrier(len(urls))
    codes: list[int] = []

    def post(url: str) -> None:
        start.wait()
        codes.append(
            httpx.post(
                f"{url}/feedback", headers=labeler_headers(), json=body, timeout=30
            ).status_code
        )

    threads = [threading.Thread(target=post, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.mark.integration
def test_the_same_token_sent_to_two_replicas_at_once_is_counted_once(
    trained, start_server: StartServer, redis_server: RedisServer, tmp_path
) -> None:
    # Two servers, each with its own SQLite file that would count the token again: only the
    # shared Redis ledger can stop it.
    shared = {"MLCANARY_LEDGER_URL": redis_server.url}
    with (
        start_server("digits:v1", MLCANARY_LEDGER=str(tmp_path / "a.sqlite"), **shared) as a,
        start_server("digits:v1", MLCANARY_LEDGER=str(tmp_path / "b.sqlite"), **shared) as b,
    ):
        body = httpx.post(f"{a}/predict", json={"instances": [ROW] * 20}, timeout=30).json()
        codes: list[int] = []
        for token, label in zip(body["feedback_tokens"], body["predictions"], strict=True):
            codes += _post_together((a, b), {"token": token, "label": label})
        assert sorted(codes) == [200] * 20 + [409] * 20
        counted = sum(metric(url, "mlcanary_feedback_total", version="v1") for url in (a, b))
        assert counted == 20


@pytest.mark.integration
def test_with_redis_down_feedback_is_refused_with_503_and_predictions_go_on(
    trained, start_server: StartServer, redis_server: RedisServer
) -> None:
    with start_server("digits:v1", MLCANARY_LEDGER_URL=redis_server.url) as url:
        body = httpx.post(f"{url}/predict", json={"instances": [ROW]}, timeout=30).json()
        redis_server.stop()
        token, label = body["feedback_tokens"][0], body["predictions"][0]
        refused = httpx.post(
            f"{url}/feedback",
            headers=labeler_headers(),
            json={"token": token, "label": label},
            timeout=30,
        )
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "ledger_unavailable"
        assert metric(url, "mlcanary_feedback_total", version="v1") == 0
        refusals = metric(
            url, "mlcanary_feedback_rejected_total", version="v1", reason="ledger_unavailable"
        )
        assert refusals == 1
        again = httpx.post(f"{url}/predict", json={"instances": [ROW]}, timeout=30)
        assert again.status_code == 200
