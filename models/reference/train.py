"""Train the reference versions and register them, scoring each on the shared holdout."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mlcanary.models.api import register
from mlcanary.models.reference.catalog import MODEL_NAME, REFERENCE_VERSIONS, Recipe
from mlcanary.models.reference.dataset import digits_split
from mlcanary.models.registry import (
    ModelRef,
    ModelVersion,
    VersionNotFoundError,
    delete_version,
    get_version,
)

__all__ = ["TrainOutcome", "train_reference_versions"]


@dataclass(frozen=True)
class TrainOutcome:
    version: ModelVersion
    trained: bool


def _select(versions: Iterable[str] | None) -> list[Recipe]:
    if versions is None:
        return list(REFERENCE_VERSIONS)
    wanted = list(dict.fromkeys(versions))
    by_version = {r.version: r for r in REFERENCE_VERSIONS}
    unknown = [v for v in wanted if v not in by_version]
    if unknown:
        known = ", ".join(by_version)
        raise ValueError(f"unknown reference version(s) {', '.join(unknown)}; known: {known}")
    return [by_version[v] for v in wanted]


def _existing(ref: ModelRef) -> ModelVersion | None:
    try:
        return get_version(ref)
    except VersionNotFoundError:
        return None


def train_reference_versions(
    versions: Iterable[str] | None = None,
    *,
    force: bool = False,
    on_start: Callable[[Recipe], None] | None = None,
) -> list[TrainOutcome]:
    """Train what is missing (or everything with ``force``); training is seeded and repeatable."""
    recipes = _select(versions)
    split = digits_split()
    outcomes = []
    for recipe in recipes:
        ref = ModelRef(MODEL_NAME, recipe.version)
        existing = _existing(ref)
        if existing is not None and not force:
            outcomes.append(TrainOutcome(existing, trained=False))
            continue
        if on_start is not None:
            on_start(recipe)
        model = recipe.fit(split)
        if existing is not None:
            delete_version(ref)
        registered = register(
            model,
            name=ref.name,
            version=ref.version,
            example=split.x_holdout[:100],
            holdout=(split.x_holdout, split.y_holdout),
            role=recipe.role,
            description=recipe.description,
            **recipe.options,
        )
        outcomes.append(TrainOutcome(registered, trained=True))
    return outcomes
