"""Canaries for the shadow step, each a digits version with a real release bug or none.

* ``v1-again``: the baseline's recipe trained again with the same seed, under another version:
  identical in behaviour to v1;
* ``v1-permuted``: the same recipe trained on the image's rows in reverse order (a preprocessing
  step that swapped columns) and served the images as they come;
* ``v1-shifted``: the same recipe trained on labels shifted by one (a wrong class order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlcanary.models.api import register
from mlcanary.models.reference.catalog import REFERENCE_VERSIONS
from mlcanary.models.reference.dataset import N_CLASSES, Split, digits_split
from mlcanary.models.registry import ModelRef, ModelVersion, VersionNotFoundError, get_version

__all__ = ["CANARIES", "register_canaries", "shadow_canaries"]

# The 8x8 image's rows in reverse order: each row's 8 pixels stay together.
_REVERSED_ROWS = np.arange(64).reshape(8, 8)[::-1].ravel()


def _baseline() -> Callable[[Split], Any]:
    return next(recipe.fit for recipe in REFERENCE_VERSIONS if recipe.version == "v1")


def _again(split: Split) -> Any:
    return _baseline()(split)


def _permuted(split: Split) -> Any:
    return _baseline()(
        Split(split.x_train[:, _REVERSED_ROWS], split.y_train, split.x_holdout, split.y_holdout)
    )


def _shifted(split: Split) -> Any:
    shifted = (split.y_train + 1) % N_CLASSES
    return _baseline()(Split(split.x_train, shifted, split.x_holdout, split.y_holdout))


CANARIES: dict[str, Callable[[Split], Any]] = {
    "v1-again": _again,
    "v1-permuted": _permuted,
    "v1-shifted": _shifted,
}


def register_canaries() -> dict[str, ModelVersion]:
    """Registered once per model store; trained in seconds (logistic regressions)."""
    split = digits_split()
    registered = {}
    for version, fit in CANARIES.items():
        try:
            registered[version] = get_version(ModelRef("digits", version))
            continue
        except VersionNotFoundError:
            pass
        registered[version] = register(
            fit(split),
            name="digits",
            version=version,
            example=split.x_holdout[:100],
            holdout=(split.x_holdout, split.y_holdout),
        )
    return registered


@pytest.fixture(scope="session")
def shadow_canaries(trained: dict[str, ModelVersion]) -> dict[str, ModelVersion]:
    return register_canaries()
