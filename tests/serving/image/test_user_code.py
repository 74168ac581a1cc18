"""A version whose network is a user's class carries that class's code into its image."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcanary.models.registry import ModelVersion
from mlcanary.serving.image.builder import stage_user_code


def test_the_package_of_a_safetensors_networks_class_is_staged(
    user_models: dict[str, ModelVersion], tmp_path: Path
) -> None:
    assert stage_user_code(user_models["weights"], tmp_path) == "tests"
    assert (tmp_path / "tests" / "user_models.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))


def test_a_version_holding_its_whole_model_needs_no_code(
    user_models: dict[str, ModelVersion], trained: dict[str, ModelVersion], tmp_path: Path
) -> None:
    assert stage_user_code(user_models["export"], tmp_path / "a") is None
    assert stage_user_code(trained["v1"], tmp_path / "b") is None
    assert (tmp_path / "a").is_dir()  # the build context always has the folder, empty here


def test_a_class_that_cannot_be_imported_is_refused_before_building(
    user_models: dict[str, ModelVersion], tmp_path: Path
) -> None:
    version = user_models["weights"]
    elsewhere = ModelVersion(
        **{**version.__dict__, "load_options": {"architecture": "nowhere_to_be_found.nets:Net"}}
    )
    with pytest.raises(ValueError, match=r"nowhere_to_be_found.*PYTHONPATH"):
        stage_user_code(elsewhere, tmp_path)
