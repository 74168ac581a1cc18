from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from mlcanary.models.dataset import digits_split
from mlcanary.models.digest import ArtifactIntegrityError
from mlcanary.models.formats.sklearn_skops import SkopsFormat, UntrustedArtifactError
from mlcanary.models.registry import (
    ModelRef,
    ModelVersion,
    VersionNotFoundError,
    get_version,
    list_versions,
    load_predictor,
)


@pytest.mark.parametrize("text", ["digits:v1", "my-model.2:2024_01"])
def test_model_ref_accepts_plain_names(text: str) -> None:
    assert str(ModelRef.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["digits", "digits:", ":v1", "Digits:v1", 'digits:v1"} or {', "a:b:c", "../x:v1"]
)
def test_model_ref_refuses_what_could_break_labels_or_paths(text: str) -> None:
    with pytest.raises(ValueError, match="NAME:VERSION"):
        ModelRef.parse(text)


def test_versions_carry_their_metadata(trained: dict[str, ModelVersion]) -> None:
    listed = {v.ref.version: v for v in list_versions("digits")}
    assert {"v1", "v2", "v3"} <= set(listed)
    v1, v2, v3 = listed["v1"], listed["v2"], listed["v3"]
    assert (v1.framework, v2.framework) == ("sklearn", "torch")
    assert v1.input_shape == (64,)
    assert len(v1.digest) == 64
    assert v1.size_bytes > 0
    assert v2.load_options["architecture"]["kind"] == "cnn"
    assert v2.holdout_accuracy > v1.holdout_accuracy > v3.holdout_accuracy + 0.05


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_loaded_artifact_reproduces_the_recorded_accuracy(
    trained: dict[str, ModelVersion], version: str
) -> None:
    split = digits_split()
    registered, predictor = load_predictor(ModelRef("digits", version), device="cpu")
    accuracy = float(np.mean(predictor.predict(split.x_holdout) == split.y_holdout))
    assert accuracy == pytest.approx(registered.holdout_accuracy)
    assert predictor.device == "cpu"


def test_unknown_version_names_the_fix(trained: dict[str, ModelVersion]) -> None:
    with pytest.raises(VersionNotFoundError, match=r"digits:v99.*mlcanary models train"):
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
    with pytest.raises(UntrustedArtifactError, match="Smuggled"):
        SkopsFormat().load(path, {}, "cpu")


def test_model_ref_refuses_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="NAME:VERSION"):
        ModelRef.parse("digits:v1\n")
