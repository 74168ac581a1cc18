from __future__ import annotations

import numpy as np
import orjson
import pytest

from mlcanary.serving.errors import ClientError
from mlcanary.serving.payloads import parse_feedback, parse_predict

ROW = [float(i % 17) for i in range(64)]


def _body(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_one_row_and_many_rows() -> None:
    one = parse_predict(_body({"instances": [ROW]}), 64, 8)
    many = parse_predict(_body({"instances": [ROW, [0] * 64, [16] * 64]}), 64, 8)
    assert one.shape == (1, 64)
    assert many.shape == (3, 64)
    assert many.dtype == np.float64
    assert many[2, 0] == 16.0


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"", 400, "empty_body", None),
        (b"   ", 400, "empty_body", None),
        (b"{not json", 400, "invalid_json", None),
        (_body([ROW]), 422, "not_an_object", None),
        (_body({}), 422, "missing_field", "instances"),
        (_body({"instances": [ROW], "extra": 1}), 422, "unknown_field", "extra"),
        (_body({"instances": []}), 422, "invalid_instances", "instances"),
        (_body({"instances": "abc"}), 422, "invalid_instances", "instances"),
        (_body({"instances": [ROW[:63]]}), 422, "wrong_feature_count", "instances[0]"),
        (_body({"instances": [ROW, [*ROW, 1.0]]}), 422, "wrong_feature_count", "instances[1]"),
        (_body({"instances": [[*ROW[:5], "7", *ROW[6:]]]}), 422, "non_numeric", "instances[0][5]"),
        (_body({"instances": [[*ROW[:2], True, *ROW[3:]]]}), 422, "non_numeric", "instances[0][2]"),
        (_body({"instances": [[*ROW[:3], None, *ROW[4:]]]}), 422, "non_numeric", "instances[0][3]"),
        (_body({"instances": [ROW, 5]}), 422, "invalid_row", "instances[1]"),
        (_body({"instances": [[*ROW[:9], [1], *ROW[10:]]]}), 422, "non_numeric", "instances[0][9]"),
        (_body({"instances": [ROW] * 9}), 413, "batch_too_large", "instances"),
        (b'{"instances": [[' + b"1e999," * 63 + b"1]]}", 400, "invalid_json", None),
        (b'{"instances": [[NaN' + b",1" * 63 + b"]]}", 400, "invalid_json", None),
    ],
)
def test_bad_predict_input_names_the_problem(
    body: bytes, status: int, code: str, field: str | None
) -> None:
    with pytest.raises(ClientError) as caught:
        parse_predict(body, 64, 8)
    assert (caught.value.status, caught.value.code, caught.value.field) == (status, code, field)
    assert caught.value.body()["error"]["message"]  # type: ignore[index]


def test_feedback_accepts_token_and_label() -> None:
    parsed = parse_feedback(_body({"token": "1.abc.def", "label": 9}), 10)
    assert (parsed.token, parsed.label) == ("1.abc.def", 9)


@pytest.mark.parametrize(
    ("obj", "code", "field"),
    [
        ({"token": "t"}, "missing_field", "label"),
        ({"token": "t", "label": 3, "version": "v2"}, "unknown_field", "version"),
        ({"token": "", "label": 3}, "invalid_token", "token"),
        ({"token": 5, "label": 3}, "invalid_token", "token"),
        ({"token": "t" * 600, "label": 3}, "invalid_token", "token"),
        ({"token": "t", "label": 10}, "invalid_label", "label"),
        ({"token": "t", "label": -1}, "invalid_label", "label"),
        ({"token": "t", "label": "3"}, "invalid_label", "label"),
        ({"token": "t", "label": True}, "invalid_label", "label"),
        ({"token": "t", "label": 2.5}, "invalid_label", "label"),
    ],
)
def test_bad_feedback_is_refused(obj: object, code: str, field: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_feedback(_body(obj), 10)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, code, field)
