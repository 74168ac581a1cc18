from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcanary.cli import app
from mlcanary.models.registry import ModelVersion

runner = CliRunner()


def test_models_list_json_shows_what_the_issue_asks(trained: dict[str, ModelVersion]) -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    # Other tests of the session register versions of their own models: the digits rows only.
    rows = {row["version"]: row for row in json.loads(result.output) if row["model"] == "digits"}
    assert (rows["v2"]["framework"], rows["v2"]["format"]) == ("torch", "torch-export")
    assert rows["v1"]["sha256"] == trained["v1"].digest
    assert rows["v3"]["holdout"]["accuracy"] == pytest.approx(trained["v3"].holdout["accuracy"])
    assert rows["v1"]["schema"] == {"kind": "tensor", "shape": [64], "dtype": "float64"}
    assert rows["v1"]["task"] == "classification"
    assert rows["v1"]["size_bytes"] > 0


def test_models_list_table(trained: dict[str, ModelVersion]) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "digits" in result.output
    assert trained["v1"].digest[:16] in result.output


def test_train_unknown_version_is_a_usage_error() -> None:
    result = runner.invoke(app, ["models", "train", "--version", "v42"])
    assert result.exit_code == 2
    assert "unknown reference version(s) v42" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "digits"], "NAME:VERSION"),
        (["--model", "digits:v404"], "not in the model store"),
        (["--model", "digits:v1", "--port", "70000"], "outside 1..65535"),
    ],
)
def test_serve_refuses_bad_arguments_before_starting(
    trained: dict[str, ModelVersion], args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_refuses_a_busy_port(trained: dict[str, ModelVersion]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", "digits:v1", "--port", str(port)])
    assert result.exit_code == 2
    assert "already in use" in result.output


def test_serve_refuses_a_tampered_artifact(
    trained: dict[str, ModelVersion], session_dir: Path
) -> None:
    artifact = trained["v3"].artifact
    backup = session_dir / "v3.bak"
    shutil.copy2(artifact, backup)
    try:
        artifact.write_bytes(artifact.read_bytes()[:-100])
        result = runner.invoke(app, ["serve", "--model", "digits:v3", "--port", "1"])
    finally:
        shutil.copy2(backup, artifact)
    assert result.exit_code == 2
    assert "integrity check" in result.output
    assert "model.skops" in result.output
