"""A user's own models served by real BentoML servers: records with named columns, ONNX, a
network declared in the tests (both torch formats), a regressor, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from mlcanary.models.registry import ModelVersion
from tests.conftest import StartServer
from tests.feedback import labeler_headers
from tests.serving.promtext import metric
from tests.user_models import tabular_data, tiny_net

pytestmark = pytest.mark.integration


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=labeler_headers(), timeout=30)


def _records(frame: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.astype(object).to_dict(orient="records")
    return [{k: (str(v) if k == "cellar" else v) for k, v in r.items()} for r in records]


def test_a_tabular_pipeline_takes_records_and_names_bad_fields(
    user_models: dict[str, ModelVersion], start_server: StartServer
) -> None:
    data = tabular_data()
    with start_server(str(user_models["tabular"].ref)) as url:
        answer = _post(url, "/predict", {"instances": _records(data.test)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        accuracy = float(np.mean(np.array(body["predictions"]) == data.test_y))
        assert accuracy == pytest.approx(user_models["tabular"].holdout["accuracy"])
        assert body["classes"] == ["barbera", "barolo", "grignolino"]
        assert len(body["probabilities"][0]) == 3
        record = _records(data.test.head(1))[0]
        token = _post(url, "/predict", {"instances": [record]}).json()["feedback_tokens"][0]
        judged = _post(url, "/feedback", {"token": token, "label": data.test_y[0]})
        assert judged.status_code == 200
        assert judged.json()["correct"] is (body["predictions"][0] == data.test_y[0])
        for bad, field in (
            ({**record, "strength": 3}, "instances[0].strength"),
            ({**record, "cellar": "west"}, "instances[0].cellar"),
            ({k: v for k, v in record.items() if k != "hue"}, "instances[0].hue"),
            ({**record, "vintage": 2020}, "instances[0].vintage"),
        ):
            refused = _post(url, "/predict", {"instances": [bad]})
            assert refused.status_code == 422
            assert refused.json()["error"]["field"] == field
        unknown_label = _post(url, "/feedback", {"token": token, "label": "chianti"})
        assert unknown_label.status_code == 422
        assert metric(url, "mlcanary_http_requests_total", code="422", endpoint="/predict") == 4


def test_an_onnx_version_is_served_by_onnxruntime(
    user_models: dict[str, ModelVersion], start_server: StartServer
) -> None:
    data = tabular_data()
    numeric = data.test.select_dtypes("number").to_numpy(np.float32)
    with start_server(str(user_models["onnx"].ref)) as url:
        body = _post(url, "/predict", {"instances": numeric.tolist()}).json()
        accuracy = float(np.mean(np.array(body["predictions"]) == data.test_y))
        assert accuracy == pytest.approx(user_models["onnx"].holdout["accuracy"])
        info = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'framework="onnx"' in info


@pytest.mark.parametrize("kind", ["export", "weights"])
def test_a_users_network_is_served_in_both_torch_formats(
    user_models: dict[str, ModelVersion], start_server: StartServer, kind: str
) -> None:
    import torch

    net, images = tiny_net()
    with torch.inference_mode():
        expected = net(torch.from_numpy(images)).argmax(dim=1).tolist()
    version = user_models[kind]
    # The safetensors version imports the user's class by its path, from the tests' package.
    with start_server(str(version.ref)) as url:
        body = _post(url, "/predict", {"instances": images.tolist()}).json()
        assert body["predictions"] == expected
        token = body["feedback_tokens"][0]
        judged = _post(url, "/feedback", {"token": token, "label": expected[0]})
        assert judged.json() == {
            "accepted": True,
            "model": "tiny",
            "version": version.ref.version,
            "correct": True,
        }
        wrong_shape = _post(url, "/predict", {"instances": [images[0].tolist()[:1]]})
        assert wrong_shape.status_code == 422
        overflow = images[0].copy().tolist()
        overflow[1][2][3] = 1e39
        too_large = _post(url, "/predict", {"instances": [overflow]})
        assert (too_large.status_code, too_large.json()["error"]["field"]) == (
            422,
            "instances[0][1][2][3]",
        )


def test_a_regressor_is_judged_on_its_error(
    user_models: dict[str, ModelVersion], start_server: StartServer
) -> None:
    from tests.user_models import regression_data

    _, _, x_test, y_test = regression_data()
    version = user_models["regression"]
    with start_server(str(version.ref)) as url:
        body = _post(url, "/predict", {"instances": x_test[:20].tolist()}).json()
        assert all(isinstance(p, float) for p in body["predictions"])
        errors = []
        for token, predicted, truth in zip(
            body["feedback_tokens"], body["predictions"], y_test[:20], strict=True
        ):
            judged = _post(url, "/feedback", {"token": token, "label": float(truth)}).json()
            assert judged["absolute_error"] == pytest.approx(abs(predicted - truth))
            errors.append(predicted - truth)
        labels = {"version": "served-ridge"}
        assert metric(url, "mlcanary_feedback_total", outcome="measured", **labels) == 20
        assert metric(url, "mlcanary_feedback_absolute_error_count", **labels) == 20
        assert metric(url, "mlcanary_feedback_absolute_error_sum", **labels) == pytest.approx(
            float(np.sum(np.abs(errors)))
        )
        assert metric(url, "mlcanary_feedback_squared_error_total", **labels) == pytest.approx(
            float(np.sum(np.square(errors)))
        )
        bad = _post(url, "/feedback", {"token": body["feedback_tokens"][0], "label": "high"})
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "label")


def test_the_openapi_document_describes_the_versions_own_input(
    user_models: dict[str, ModelVersion], start_server: StartServer
) -> None:
    with start_server(str(user_models["tabular"].ref)) as url:
        document = httpx.get(f"{url}/docs.json", timeout=10).json()
        predict = document["paths"]["/predict"]["post"]
        body = predict["requestBody"]["content"]["application/json"]["schema"]
        row = body["properties"]["instances"]["items"]
        assert row["properties"]["cellar"] == {"type": "string", "enum": ["east", "north", "south"]}
        assert row["properties"]["strength"]["type"] == "string"
        assert "hue" in row["required"]
        feedback = document["paths"]["/feedback"]["post"]["requestBody"]
        label = feedback["content"]["application/json"]["schema"]["properties"]["label"]
        assert label == {"enum": ["barbera", "barolo", "grignolino"]}
        assert httpx.get(f"{url}/model", timeout=10).json()["task"] == "classification"
