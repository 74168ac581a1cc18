"""What `mlcanary build` refuses or derives before it touches docker."""

from __future__ import annotations

import pytest

from mlcanary.models.registry import ModelRef, ModelVersion
from mlcanary.serving.image.builder import (
    ImageSpec,
    build_args,
    build_image,
    image_tag,
    push_target,
)

REF = ModelRef("digits", "v2")


def test_default_tags_name_the_version_and_variant() -> None:
    assert image_tag(ImageSpec("digits:v2"), REF) == "mlcanary/digits:v2"
    assert image_tag(ImageSpec("digits:v2", gpu=True), REF) == "mlcanary/digits:v2-gpu"
    assert image_tag(ImageSpec("digits:v2", tag="team/digits"), REF) == "team/digits:v2"
    spec = ImageSpec("digits:v2", tag="localhost:5000/team/digits")
    assert image_tag(spec, REF) == "localhost:5000/team/digits:v2"
    assert image_tag(ImageSpec("digits:v2", tag="team/digits:prod"), REF) == "team/digits:prod"


def test_push_keeps_the_tag_under_the_registry_repository() -> None:
    spec = ImageSpec("digits:v2", push="127.0.0.1:5000/ml/digits")
    assert push_target(spec, "mlcanary/digits:v2-gpu") == "127.0.0.1:5000/ml/digits:v2-gpu"
    assert push_target(ImageSpec("digits:v2"), "mlcanary/digits:v2") is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ImageSpec("digits:v2", tag="Bad Name"), "--tag"),
        (ImageSpec("digits:v2", tag="team/digits:"), "--tag"),
        (ImageSpec("digits:v2", push="127.0.0.1:5000/ml/digits:v2"), "--push"),
        (ImageSpec("digits:v2", push="UPPER/case"), "--push"),
    ],
)
def test_bad_names_are_refused_naming_the_option(
    trained: dict[str, ModelVersion], spec: ImageSpec, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        build_image(spec)


def test_an_unknown_version_is_refused(trained: dict[str, ModelVersion]) -> None:
    with pytest.raises(LookupError, match="digits:v99"):
        build_image(ImageSpec("digits:v99"))


def test_the_variants_differ_only_in_base_and_nvidia_settings() -> None:
    cpu = build_args(ImageSpec("digits:v2"), REF)
    gpu = build_args(ImageSpec("digits:v2", gpu=True), REF)
    assert cpu == {
        "BASE_IMAGE": "python:3.11-slim",
        "MODEL": "digits:v2",
        "MLCANARY_DEVICE": "cpu",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }
    assert gpu == {
        "BASE_IMAGE": "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
        "MODEL": "digits:v2",
        "MLCANARY_DEVICE": "auto",
    }
    assert build_args(ImageSpec("digits:v2", base_image="x/y:z"), REF)["BASE_IMAGE"] == "x/y:z"
