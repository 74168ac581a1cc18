"""Models a user would bring, built the way they would build them: a tabular Pipeline over named
numeric and string columns, an ONNX graph made with skl2onnx, a PyTorch network declared here
(not in mlcanary), and a regressor. Seeded, small, and registered once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

__all__ = ["Tabular", "TinyNet", "regression_data", "tabular_data", "tiny_net"]

SEED = 11


@dataclass(frozen=True)
class Tabular:
    train: pd.DataFrame
    train_y: npt.NDArray[Any]
    test: pd.DataFrame
    test_y: npt.NDArray[Any]


def tabular_data() -> Tabular:
    """The wine set as a DataFrame, with a string column derived from one of its numbers and a
    categorical one drawn at random (seeded); the label is a string too."""
    bunch = load_wine(as_frame=True)
    frame = bunch.data.rename(columns=lambda c: c.replace("/", "_"))
    rng = np.random.default_rng(SEED)
    frame["strength"] = pd.cut(frame["alcohol"], 3, labels=["light", "medium", "strong"]).astype(
        str
    )
    frame["cellar"] = pd.Categorical(rng.choice(["north", "south", "east"], len(frame)))
    labels = np.array(["barolo", "grignolino", "barbera"])[bunch.target.to_numpy()]
    order = rng.permutation(len(frame))
    cut = int(len(frame) * 0.7)
    train, test = order[:cut], order[cut:]
    return Tabular(
        frame.iloc[train].reset_index(drop=True),
        labels[train],
        frame.iloc[test].reset_index(drop=True),
        labels[test],
    )


def tabular_pipeline(data: Tabular) -> Pipeline:
    encode = ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore"), ["strength", "cellar"])],
        remainder="passthrough",
    )
    model = Pipeline(
        [("encode", encode), ("boost", HistGradientBoostingClassifier(random_state=SEED))]
    )
    return model.fit(data.train, data.train_y)


def numeric_classifier(data: Tabular) -> Any:
    """What skl2onnx converts: standardised logistic regression on the numeric columns."""
    numeric = data.train.select_dtypes("number")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        numeric.to_numpy(np.float32), data.train_y
    )


def regression_data() -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(SEED).permutation(len(x))
    cut = int(len(x) * 0.7)
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def ridge(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any:
    return Ridge(alpha=0.1).fit(x, y)


class TinyNet(nn.Module):
    """A user's network: a 2x4x4 image in, three class scores out."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * 16, hidden), nn.ReLU(), nn.Linear(hidden, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.head(torch.relu(self.conv(x))))


def tiny_net() -> tuple[TinyNet, npt.NDArray[np.float32]]:
    """The network with seeded weights, and 20 example images."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    return TinyNet(hidden=16).eval(), rng.normal(size=(20, 2, 4, 4)).astype(np.float32)
