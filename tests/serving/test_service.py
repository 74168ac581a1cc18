"""A real BentoML server per model version, exercised over HTTP on loopback."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlcanary.models.reference.dataset import digits_split
from mlcanary.models.registry import ModelRef, get_version
from tests.feedback import labeler_headers
from tests.serving.promtext import metric

pytestmark = pytest.mark.integration

ROW = [0.0] * 64
BAD_PREDICTS = [
    (b"", 400, "empty_body"),
    (b"[1, 2", 400, "invalid_json"),
    (orjson.dumps({"instances": [[1.0, 2.0]]}), 422, "wrong_shape"),
    (orjson.dumps({"instances": [["a"] * 64]}), 422, "wrong_type"),
    (orjson.dumps({"instances": [ROW], "debug": True}), 422, "unknown_field"),
    (orjson.dumps({"instances": [ROW] * 1025}), 413, "batch_too_large"),
]
VERSIONS = [pytest.param("digits:v1", id="sklearn"), pytest.param("digits:v2", id="torch")]


def _predict(url: str, rows: list[list[float]]) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"instances": rows}, timeout=30)


@pytest.mark.parametrize("served", VERSIONS, indirect=True)
class TestOneVersion:
    def test_health(self, served: str) -> None:
        assert httpx.get(f"{served}/livez", timeout=5).status_code == 200
        assert httpx.get(f"{served}/readyz", timeout=5).status_code == 200

    def test_batch_prediction_reproduces_the_holdout_accuracy(self, served: str) -> None:
        split = digits_split()
        answer = _predict(served, split.x_holdout.tolist())
        assert answer.status_code == 200
        body = answer.json()
        version = get_version(ModelRef.parse(f"digits:{body['version']}"))
        accuracy = float(np.mean(np.array(body["predictions"]) == split.y_holdout))
        assert accuracy == pytest.approx(version.holdout["accuracy"])
        assert len(body["feedback_tokens"]) == len(split.y_holdout)

    def test_feedback_counts_once_and_refuses_forgeries(self, served: str) -> None:
        version = _predict(served, [ROW]).json()["version"]
        before = metric(served, "mlcanary_feedback_total", version=version)
        answer = _predict(served, [ROW, ROW]).json()
        first, second = answer["feedback_tokens"]
        predicted = answer["predictions"][0]
        ok = httpx.post(
            f"{served}/feedback",
            headers=labeler_headers(),
            json={"token": first, "label": predicted},
            timeout=10,
        )
        assert ok.status_code == 200
        assert ok.json()["correct"] is True
        again = httpx.post(
            f"{served}/feedback",
            headers=labeler_headers(),
            json={"token": first, "label": predicted},
            timeout=10,
        )
        assert again.status_code == 409
        forged = second[:-3] + ("AAA" if not second.endswith("AAA") else "BBB")
        refused = httpx.post(
            f"{served}/feedback",
            headers=labeler_headers(),
            json={"token": forged, "label": 1},
            timeout=10,
        )
        assert refused.status_code == 403
        assert metric(served, "mlcanary_feedback_total", version=version) == before + 1
        assert metric(served, "mlcanary_feedback_rejected_total", reason="duplicate") >= 1
        assert metric(served, "mlcanary_feedback_rejected_total", reason="invalid_token") >= 1

    def test_a_client_without_the_labeler_key_cannot_label_its_own_predictions(
        self, served: str
    ) -> None:
        answer = _predict(served, [ROW]).json()
        version, token = answer["version"], answer["feedback_tokens"][0]
        before = metric(served, "mlcanary_feedback_total", version=version)
        wrong_label = (answer["predictions"][0] + 1) % 10
        tries = [{}, {"Authorization": "Bearer guessed-key-0123456789"}, {"Authorization": token}]
        for headers in tries:
            refused = httpx.post(
                f"{served}/feedback",
                headers=headers,
                json={"token": token, "label": wrong_label},
                timeout=10,
            )
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"]["code"] == "unauthorized"
        assert metric(served, "mlcanary_feedback_total", version=version) == before
        refusals = metric(served, "mlcanary_feedback_rejected_total", reason="unauthorized")
        assert refusals >= len(tries)

    @pytest.mark.parametrize(("body", "status", "code"), BAD_PREDICTS)
    def test_bad_input_gets_a_clear_4xx(
        self, served: str, body: bytes, status: int, code: str
    ) -> None:
        answer = httpx.post(
            f"{served}/predict",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == status
        assert answer.json()["error"]["code"] == code

    def test_wrong_media_type_is_415(self, served: str) -> None:
        answer = httpx.post(
            f"{served}/predict",
            content=b"x=1",
            timeout=10,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 415

    def test_client_errors_are_counted_apart_from_server_errors(self, served: str) -> None:
        httpx.post(f"{served}/predict", json={"instances": [[1.0]]}, timeout=10)
        text = httpx.get(f"{served}/metrics", timeout=10).text
        codes = {
            sample.labels["code"]
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "mlcanary_http_requests_total" and sample.value > 0
        }
        assert "422" in codes
        assert "200" in codes
        assert not {c for c in codes if c.startswith("5")}
        info = metric(served, "mlcanary_model_info", device="cpu")
        assert info == 1
        assert (
            metric(served, "mlcanary_http_request_duration_seconds_count", endpoint="/predict") > 0
        )
