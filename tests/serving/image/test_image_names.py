"""What `mlcanary build` refuses or derives before it touches docker."""

from __future__ import annotations

from typing import Any

import pytest

from mlcanary import __version__
from mlcanary.models.registry import ModelRef, ModelVersion
from mlcanary.serving.image.builder import (
    ImageSpec,
    build_args,
    build_image,
    image_tag,
    push_target,
)
from mlcanary.serving.image.wheelhouse import CPU_TORCH, cuda_torch

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


def test_the_variants_differ_only_in_nvidia_settings_and_extras_follow_the_framework(
    trained: dict[str, ModelVersion],
) -> None:
    sklearn, torch = trained["v1"], trained["v2"]
    assert build_args(ImageSpec("digits:v1"), sklearn) == {
        "BASE_IMAGE": "python:3.11-slim",
        "EXTRAS": "serve",
        "MODEL": "digits:v1",
        "MLCANARY_DEVICE": "cpu",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }
    assert build_args(ImageSpec("digits:v2"), torch) == {
        "BASE_IMAGE": "python:3.11-slim",
        "EXTRAS": "torch",
        "MODEL": "digits:v2",
        "MLCANARY_DEVICE": "cpu",
        "NVIDIA_VISIBLE_DEVICES": "void",
    }
    # The Dockerfile's defaults are the GPU settings: NVIDIA_VISIBLE_DEVICES=all.
    assert build_args(ImageSpec("digits:v2", gpu=True), torch) == {
        "BASE_IMAGE": "python:3.11-slim",
        "EXTRAS": "torch",
        "MODEL": "digits:v2",
        "MLCANARY_DEVICE": "auto",
    }
    spec = ImageSpec("digits:v2", base_image="x/y:z")
    assert build_args(spec, torch)["BASE_IMAGE"] == "x/y:z"


def test_the_controller_image_installs_only_its_extra() -> None:
    assert build_args(ImageSpec(controller=True), None) == {
        "BASE_IMAGE": "python:3.11-slim",
        "EXTRAS": "controller",
    }
    assert image_tag(ImageSpec(controller=True), None) == f"mlcanary/controller:{__version__}"
    spec = ImageSpec(controller=True, push="127.0.0.1:5000/ml/digits")
    assert push_target(spec, image_tag(spec, None)) == (
        f"127.0.0.1:5000/ml/digits:controller-{__version__}"
    )


def test_torch_is_the_build_of_the_variant(trained: dict[str, ModelVersion]) -> None:
    sklearn, torch = trained["v1"], trained["v2"]
    assert ImageSpec("digits:v1", gpu=True).torch_build(sklearn) is None
    assert ImageSpec("digits:v2").torch_build(torch) == CPU_TORCH
    assert ImageSpec("digits:v2", gpu=True).torch_build(torch) == cuda_torch("pypi")
    cu128 = ImageSpec("digits:v2", gpu=True, cuda="cu128").torch_build(torch)
    assert cu128 == cuda_torch("cu128")
    assert cu128.requirement("2.13.0") == "torch===2.13.0+cu128"
    assert CPU_TORCH.requirement("2.13.0") == "torch===2.13.0+cpu"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "give --model NAME:VERSION or --controller"),
        ({"model": "digits:v2", "controller": True}, "give --model NAME:VERSION or --controller"),
        ({"controller": True, "gpu": True}, "^--gpu: "),
        ({"model": "digits:v2", "cuda": "cu128"}, "^--cuda chooses"),
    ],
)
def test_contradictory_options_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageSpec(**arguments)


def test_an_unknown_cuda_build_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^--cuda 'cuda12' is not pypi"):
        cuda_torch("cuda12")
