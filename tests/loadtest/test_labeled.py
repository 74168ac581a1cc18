"""Labeled traffic from a user's own data, shaped by the served version's schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

import mlcanary.loadtest
from mlcanary.loadtest.labeled import digits_rows, rows_from_table
from mlcanary.models.registry import ModelVersion
from mlcanary.models.schema import Column, ColumnsSchema, TensorSchema
from tests.conftest import StartServer
from tests.serving.promtext import metric
from tests.user_models import tabular_data

LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "traffic" / "locustfile.py"


def test_the_default_rows_are_the_digits_holdout() -> None:
    rows = digits_rows()
    assert len(rows) == 540
    assert len(orjson.loads(rows[0].body)["instances"][0]) == 64
    assert isinstance(rows[0].label, int)


def test_a_table_becomes_records_of_the_models_columns_with_nulls_for_missing_values() -> None:
    table = pd.DataFrame(
        {
            "plan": ["pro", "basic"],
            "spend": [1.5, np.nan],
            "extra": [1, 2],
            "churned": ["yes", "no"],
        }
    )
    schema = ColumnsSchema(
        columns=(Column(name="spend", dtype="float64"), Column(name="plan", dtype="string"))
    )
    rows = rows_from_table(table, "churned", schema)
    assert [orjson.loads(r.body) for r in rows] == [
        {"instances": [{"spend": 1.5, "plan": "pro"}]},
        {"instances": [{"spend": None, "plan": "basic"}]},
    ]
    assert [r.label for r in rows] == ["yes", "no"]


def test_a_table_of_flattened_values_becomes_tensors_of_the_models_shape() -> None:
    table = pd.DataFrame(np.arange(8.0).reshape(2, 4), columns=list("abcd"))
    table["target"] = [0.5, 1.5]
    rows = rows_from_table(table, "target", TensorSchema(shape=(2, 2)))
    assert orjson.loads(rows[1].body) == {"instances": [[[4.0, 5.0], [6.0, 7.0]]]}
    assert rows[1].label == 1.5


def test_missing_columns_are_named() -> None:
    schema = ColumnsSchema(columns=(Column(name="tenure", dtype="int64"),))
    with pytest.raises(ValueError, match=r"lacks the model's columns \['tenure'\]"):
        rows_from_table(pd.DataFrame({"plan": ["x"], "label": [1]}), "label", schema)


@pytest.mark.integration
def test_locust_sends_a_users_data_and_its_labels_come_back_as_feedback(
    user_models: dict[str, ModelVersion], start_server: StartServer, tmp_path: Path
) -> None:
    data = tabular_data()
    table = data.test.assign(wine=data.test_y)
    path = tmp_path / "wine.parquet"
    table.to_parquet(path)
    with start_server(str(user_models["tabular"].ref)) as url:
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", url, "-u", "4", "-r", "4", "-t", "6s", "--only-summary",
            "--data", str(path), "--label-column", "wine", "--loglevel", "WARNING",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        version = user_models["tabular"].ref.version
        labeled = metric(url, "mlcanary_feedback_total", version=version)
        assert labeled > 20
        correct = metric(url, "mlcanary_feedback_total", version=version, outcome="correct")
        assert correct / labeled > 0.8  # the labels are the data's: a good model gets most right
        assert metric(url, "mlcanary_http_requests_total", code="422") == 0
