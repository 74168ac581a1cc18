"""The reference versions of the digits model, with the roles the rollout work needs.

Each regression is real: the less accurate version is trained on a sliver of the data, the slow
one is a large forest whose accuracy matches the baseline. Nothing sleeps or flips a flag. Each
recipe trains a model and says how it is registered, through the same `register` a user calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlcanary.models.reference.dataset import Split
from mlcanary.models.reference.nets import DigitsCNN, DigitsMLP
from mlcanary.models.reference.training import train_net

__all__ = ["MODEL_NAME", "REFERENCE_VERSIONS", "Recipe"]

MODEL_NAME = "digits"
_SEED = 7


@dataclass(frozen=True)
class Recipe:
    version: str
    role: str
    description: str
    fit: Callable[[Split], Any]
    # How it is registered, beside the defaults (a torch network as a torch.export program).
    options: Mapping[str, Any] = field(default_factory=dict)


def _logistic(fraction: float) -> Callable[[Split], Any]:
    def fit(split: Split) -> Any:
        n = max(20, int(len(split.x_train) * fraction))
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return pipeline.fit(split.x_train[:n], split.y_train[:n])

    return fit


def _forest(split: Split) -> Any:
    forest = RandomForestClassifier(n_estimators=400, random_state=_SEED, n_jobs=1)
    return forest.fit(split.x_train, split.y_train)


def _network(build: Callable[[], torch.nn.Module], epochs: int) -> Callable[[Split], Any]:
    def fit(split: Split) -> Any:
        torch.manual_seed(_SEED)
        return train_net(build(), split.x_train, split.y_train, epochs=epochs, seed=_SEED)

    return fit


_CLASSIFIER = {"task": "classification", "classes": list(range(10))}

REFERENCE_VERSIONS: tuple[Recipe, ...] = (
    Recipe("v1", "baseline", "logistic regression, standardized", _logistic(1.0)),
    Recipe(
        "v2",
        "better",
        "small CNN (a torch.export program)",
        _network(lambda: DigitsCNN(channels=32), 30),
        _CLASSIFIER,
    ),
    Recipe(
        "v3",
        "less accurate",
        "logistic regression trained on 4% of the training rows",
        _logistic(0.04),
    ),
    Recipe("v4", "slower", "random forest of 400 trees", _forest),
    Recipe(
        "v5",
        "alternative",
        "MLP, two hidden layers of 128 (a safetensors state_dict and its class)",
        _network(lambda: DigitsMLP(hidden=128, depth=2), 60),
        {
            **_CLASSIFIER,
            "format": "safetensors",
            "architecture": "mlcanary.models.reference.nets:DigitsMLP",
            "config": {"hidden": 128, "depth": 2},
        },
    ),
)
