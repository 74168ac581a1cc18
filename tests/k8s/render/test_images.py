"""The images rendering names are the ones `mlcanary build` tags and pushes."""

from __future__ import annotations

import pytest

from mlcanary.models.registry import ModelRef
from mlcanary.serving.image.builder import ImageSpec, image_tag, push_target
from mlcanary.serving.image.names import repository_problem, version_image


@pytest.mark.parametrize("gpu", [False, True])
@pytest.mark.parametrize(("model", "version"), [("digits", "v2"), ("fraud.gbm", "2024_01-rc.1")])
def test_the_default_name_is_the_tag_the_build_gives(model: str, version: str, gpu: bool):
    built = image_tag(ImageSpec(f"{model}:{version}", gpu=gpu), ModelRef(model, version))
    assert version_image(model, version, gpu=gpu) == built


@pytest.mark.parametrize("gpu", [False, True])
@pytest.mark.parametrize(
    "repository", ["registry.example/ml/digits", "127.0.0.1:5000/digits", "localhost/team/d"]
)
def test_with_a_repository_the_name_is_the_one_the_build_pushes(repository: str, gpu: bool):
    spec = ImageSpec("digits:v2", gpu=gpu, push=repository)
    pushed = push_target(spec, image_tag(spec, ModelRef("digits", "v2")))
    assert repository_problem(repository) is None
    assert version_image("digits", "v2", gpu=gpu, repository=repository) == pushed


@pytest.mark.parametrize(
    ("repository", "problem"),
    [
        ("registry.example/ml/digits:v2", "has a tag"),
        ("Registry/Upper", "is not an image repository"),
        ("ml//digits", "is not an image repository"),
        ("ml/digits/", "is not an image repository"),
    ],
)
def test_a_repository_the_build_refuses_is_refused(repository: str, problem: str):
    with pytest.raises(ValueError, match=r"^--push "):
        push_target(ImageSpec("digits:v2", push=repository), "mlcanary/digits:v2")
    assert problem in (repository_problem(repository) or "")
