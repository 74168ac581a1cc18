from __future__ import annotations

import numpy as np
import orjson
import pytest

from mlcanary.models.schema import Column, ColumnsSchema, TensorSchema
from mlcanary.models.task import ClassificationOutput, RegressionOutput
from mlcanary.serving.errors import ClientError
from mlcanary.serving.payloads import parse_feedback, parse_predict

ROW = [float(i % 17) for i in range(64)]
DIGITS = TensorSchema(shape=(64,))
CLASSES = ClassificationOutput(classes=tuple(range(10)))
TABLE = ColumnsSchema(
    columns=(
        Column(name="tenure", dtype="int64"),
        Column(name="spend", dtype="float32"),
        Column(name="plan", dtype="category", categories=("basic", "pro")),
        Column(name="note", dtype="string"),
        Column(name="active", dtype="bool"),
    )
)
RECORD = {"tenure": 3, "spend": 12.5, "plan": "pro", "note": "x", "active": True}


def _body(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_one_row_and_many_rows() -> None:
    one = parse_predict(_body({"instances": [ROW]}), DIGITS, 8)
    many = parse_predict(_body({"instances": [ROW, [0] * 64, [16] * 64]}), DIGITS, 8)
    assert isinstance(one, np.ndarray)
    assert isinstance(many, np.ndarray)
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
        (_body({"instances": [ROW[:63]]}), 422, "wrong_shape", "instances[0]"),
        (_body({"instances": [ROW, [*ROW, 1.0]]}), 422, "wrong_shape", "instances[1]"),
        (_body({"instances": [[*ROW[:5], "7", *ROW[6:]]]}), 422, "wrong_type", "instances[0][5]"),
        (_body({"instances": [[*ROW[:2], True, *ROW[3:]]]}), 422, "wrong_type", "instances[0][2]"),
        (_body({"instances": [[*ROW[:3], None, *ROW[4:]]]}), 422, "wrong_type", "instances[0][3]"),
        (_body({"instances": [ROW, 5]}), 422, "invalid_row", "instances[1]"),
        (_body({"instances": [[*ROW[:9], [1], *ROW[10:]]]}), 422, "wrong_type", "instances[0][9]"),
        (_body({"instances": [ROW] * 9}), 413, "batch_too_large", "instances"),
        (b'{"instances": [[' + b"1e999," * 63 + b"1]]}", 400, "invalid_json", None),
        (b'{"instances": [[NaN' + b",1" * 63 + b"]]}", 400, "invalid_json", None),
    ],
)
def test_bad_predict_input_names_the_problem(
    body: bytes, status: int, code: str, field: str | None
) -> None:
    with pytest.raises(ClientError) as caught:
        parse_predict(body, DIGITS, 8)
    assert (caught.value.status, caught.value.code, caught.value.field) == (status, code, field)
    assert caught.value.body()["error"]["message"]  # type: ignore[index]


def test_feedback_accepts_token_and_label() -> None:
    parsed = parse_feedback(_body({"token": "1.abc.def", "label": 9}), CLASSES)
    assert (parsed.token, parsed.label) == ("1.abc.def", 9)


@pytest.mark.parametrize(
    ("obj", "code", "field"),
    [
        ({"token": "t"}, "missing_field", "label"),
        ({"token": "t", "label": 3, "version": "v2"}, "unknown_field", "version"),
        ({"token": "", "label": 3}, "invalid_token", "token"),
        ({"token": 5, "label": 3}, "invalid_token", "token"),
        ({"token": "t" * 3000, "label": 3}, "invalid_token", "token"),
        ({"token": "t", "label": 10}, "invalid_label", "label"),
        ({"token": "t", "label": -1}, "invalid_label", "label"),
        ({"token": "t", "label": "3"}, "invalid_label", "label"),
        ({"token": "t", "label": True}, "invalid_label", "label"),
        ({"token": "t", "label": 2.5}, "invalid_label", "label"),
    ],
)
def test_bad_feedback_is_refused(obj: object, code: str, field: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_feedback(_body(obj), CLASSES)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, code, field)


def test_a_float32_model_refuses_a_number_that_would_overflow_it() -> None:
    narrow = TensorSchema(shape=(64,), dtype="float32")
    assert parse_predict(_body({"instances": [ROW]}), narrow, 8).dtype == np.float32  # type: ignore[union-attr]
    with pytest.raises(ClientError) as caught:
        parse_predict(_body({"instances": [[*ROW[:7], 1e39, *ROW[8:]]]}), narrow, 8)
    assert (caught.value.code, caught.value.field) == ("out_of_range", "instances[0][7]")


def test_tensor_rows_of_any_shape() -> None:
    images = TensorSchema(shape=(3, 2, 2), dtype="float32")
    image = [[[0.0, 1.0], [2.0, 3.0]]] * 3
    parsed = parse_predict(_body({"instances": [image, image]}), images, 8)
    assert parsed.shape == (2, 3, 2, 2)  # type: ignore[union-attr]
    with pytest.raises(ClientError) as caught:
        parse_predict(_body({"instances": [[[[0.0, 1.0], [2.0]]] * 3]}), images, 8)
    assert (caught.value.code, caught.value.field) == ("wrong_shape", "instances[0][0][1]")


def test_records_with_named_columns() -> None:
    parsed = parse_predict(_body({"instances": [RECORD, {**RECORD, "spend": None}]}), TABLE, 8)
    assert isinstance(parsed, dict)
    assert parsed["tenure"].tolist() == [3, 3]
    assert parsed["plan"].tolist() == ["pro", "pro"]
    assert np.isnan(parsed["spend"][1])  # null is a missing value in a float column
    assert parsed["active"].dtype == np.bool_


@pytest.mark.parametrize(
    ("record", "code", "field"),
    [
        ({k: v for k, v in RECORD.items() if k != "plan"}, "missing_field", "instances[0].plan"),
        ({**RECORD, "age": 40}, "unknown_field", "instances[0].age"),
        ({**RECORD, "tenure": 2.5}, "wrong_type", "instances[0].tenure"),
        ({**RECORD, "tenure": "3"}, "wrong_type", "instances[0].tenure"),
        ({**RECORD, "tenure": 2**63}, "out_of_range", "instances[0].tenure"),
        ({**RECORD, "spend": 1e39}, "out_of_range", "instances[0].spend"),
        ({**RECORD, "plan": "gold"}, "unknown_category", "instances[0].plan"),
        ({**RECORD, "note": 5}, "wrong_type", "instances[0].note"),
        ({**RECORD, "note": "n" * 5000}, "too_long", "instances[0].note"),
        ({**RECORD, "active": 1}, "wrong_type", "instances[0].active"),
        ([3, 12.5, "pro", "x", True], "invalid_row", "instances[0]"),
    ],
)
def test_bad_records_name_the_field(record: object, code: str, field: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_predict(_body({"instances": [record]}), TABLE, 8)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, code, field)


@pytest.mark.parametrize(
    ("outputs", "label", "parsed", "field"),
    [
        (1, 12.5, 12.5, None),
        (1, 3, 3.0, None),
        (1, "12.5", None, "label"),
        (1, True, None, "label"),
        (2, [1.0, 2.0], [1.0, 2.0], None),
        (2, [1.0], None, "label"),
        (2, [1.0, "x"], None, "label[1]"),
    ],
)
def test_a_regression_label_is_a_number_or_one_per_output(
    outputs: int, label: object, parsed: object, field: str | None
) -> None:
    body = _body({"token": "t", "label": label})
    if field is None:
        assert parse_feedback(body, RegressionOutput(outputs=outputs)).label == parsed
        return
    with pytest.raises(ClientError) as caught:
        parse_feedback(body, RegressionOutput(outputs=outputs))
    assert (caught.value.code, caught.value.field) == ("invalid_label", field)


def test_string_class_labels() -> None:
    churn = ClassificationOutput(classes=("no", "yes"))
    assert parse_feedback(_body({"token": "t", "label": "yes"}), churn).label == "yes"
    with pytest.raises(ClientError):
        parse_feedback(_body({"token": "t", "label": 1}), churn)
