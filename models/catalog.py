"""The reference versions of the digits model, with the roles the rollout work needs.

Each regression is real: the less accurate version is trained on a sliver of the data, the slow
one is a large forest whose accuracy matches the baseline. Nothing sleeps or flips a flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlcanary.models.dataset import Split
from mlcanary.models.torch_training import train_net

__all__ = ["MODEL_NAME", "REFERENCE_VERSIONS", "Recipe"]

MODEL_NAME = "digits"
_SEED = 7


@dataclass(frozen=True)
class Recipe:
    version: str
    framework: str
    role: str
    description: str
    fit: Callable[[Split], Any]


def _logistic(fraction: float) -> Callable[[Split], Any]:
    def fit(split: Split) -> Any:
        n = max(20, int(len(split.x_train) * fraction))
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return pipeline.fit(split.x_train[:n], split.y_train[:n])

    return fit


def _forest(split: Split) -> Any:
    forest = RandomForestClassifier(n_estimators=400, random_state=_SEED, n_jobs=1)
    return forest.fit(split.x_train, split.y_train)


def _torch(architecture: dict[str, Any], epochs: int) -> Callable[[Split], Any]:
    def fit(split: Split) -> Any:
        net = train_net(architecture, split.x_train, split.y_train, epochs=epochs, seed=_SEED)
        return net, architecture

    return fit


REFERENCE_VERSIONS: tuple[Recipe, ...] = (
    Recipe("v1", "sklearn", "baseline", "logistic regression, standardized", _logistic(1.0)),
    Recipe("v2", "torch", "better", "small CNN", _torch({"kind": "cnn", "channels": 32}, 30)),
    Recipe(
        "v3",
        "sklearn",
        "less accurate",
        "logistic regression trained on 4% of the training rows",
        _logistic(0.04),
    ),
    Recipe("v4", "sklearn", "slower", "random forest of 400 trees", _forest),
    Recipe(
        "v5",
        "torch",
        "alternative",
        "MLP, two hidden layers of 128",
        _torch({"kind": "mlp", "hidden": 128, "depth": 2}, 60),
    ),
)
