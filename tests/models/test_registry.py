from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from mlcanary.models.digest import ArtifactIntegrityError
from mlcanary.models.formats.base import LoadContext, UntrustedArtifactError
from mlcanary.models.formats.skops import SkopsFormat
from mlcanary.models.reference.dataset import digits_split
from mlcanary.models.registry import (
    ModelRef,
    ModelVersion,
    VersionNotFoundError,
    get_version,
    list_versions,
    load_predictor,
)
from mlcanary.models.schema import TensorSchema
from mlcanary.models.task import ClassificationOutput, RegressionOutput


@pytest.mark.parametrize("text", ["digits:v1", "my-model.2:2024_01"])
def test_model_ref_accepts_plain_names(text: str) -> None:
    assert str(ModelRef.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["digits", "digits:", ":v1", "Digits:v1", 'digits:v1"} or {', "a:b:c", "../x:v1"]
)
def test_model_ref_refuses_what_could_break_labels_or_paths(text: str) -> None:
    with pytest.raises(ValueError, match=r"NAME:VERSION|lowercase letters"):
        ModelRef.parse(text)


def test_versions_carry_their_metadata(trained: dict[str, ModelVersion]) -> None:
    listed = {v.ref.version: v for v in list_versions("digits")}
    assert {"v1", "v2", "v3"} <= set(listed)
    v1, v2, v3 = listed["v1"], listed["v2"], listed["v3"]
    assert (v1.format, v2.format) == ("skops", "torch-export")
    assert v1.schema == TensorSchema(shape=(64,), dtype="float64")
    # The network computes in float32, so its requests are held to float32's range.
    assert v2.schema == TensorSchema(shape=(64,), dtype="float32")
    assert v1.output == ClassificationOutput(classes=tuple(range(10)), probabilities=True)
    assert len(v1.digest) == 64
    assert v1.size_bytes > 0
    assert v2.holdout["accuracy"] > v1.holdout["accuracy"] > v3.holdout["accuracy"] + 0.05


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_loaded_artifact_reproduces_the_recorded_accuracy(
    trained: dict[str, ModelVersion], version: str
) -> None:
    split = digits_split()
    registered, predictor = load_predictor(ModelRef("digits", version), device="cpu")
    predicted = predictor.predict(registered.schema.to_batch(split.x_holdout)).values
    accuracy = float(np.mean(np.asarray(predicted) == split.y_holdout))
    assert accuracy == pytest.approx(registered.holdout["accuracy"])
    assert predictor.device == "cpu"


def test_unknown_version_names_the_fix(trained: dict[str, ModelVersion]) -> None:
    with pytest.raises(VersionNotFoundError, match=r"digits:v99.*mlcanary models list"):
        get_version(ModelRef("digits", "v99"))


@pytest.fixture
def tampered_copy(trained: dict[str, ModelVersion], session_dir: Path) -> Iterator[ModelVersion]:
    """The v1 artifact with one byte changed, restored afterwards."""
    version = trained["v1"]
    backup = session_dir / "v1-artifact.bak"
    shutil.copy2(version.artifact, backup)
    data = bytearray(version.artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    version.artifact.write_bytes(bytes(data))
    yield version
    shutil.copy2(backup, version.artifact)


def test_tampered_artifact_is_refused_before_loading(tampered_copy: ModelVersion) -> None:
    with pytest.raises(ArtifactIntegrityError, match=str(tampered_copy.artifact)):
        load_predictor(tampered_copy.ref)


class Smuggled:
    """Stands for any class an attacker would like the loader to instantiate."""


def test_skops_refuses_types_outside_the_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump({"payload": Smuggled()}, path)
    context = LoadContext(TensorSchema(shape=(1,)), RegressionOutput())
    with pytest.raises(UntrustedArtifactError, match=r"test_registry\.Smuggled.*--trust"):
        SkopsFormat().load(path, {}, context)


def test_model_ref_refuses_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        ModelRef.parse("digits:v1\n")
