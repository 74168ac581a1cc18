"""The reference dataset and its fixed train/holdout split.

Every version is scored on the same holdout rows, and the load generator replays those rows
with their labels, so that accuracy measured in serving is comparable with accuracy measured
at training time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = ["HOLDOUT_FRACTION", "N_CLASSES", "N_FEATURES", "SPLIT_SEED", "Split", "digits_split"]

SPLIT_SEED = 20261124
HOLDOUT_FRACTION = 0.3
N_FEATURES = 64
N_CLASSES = 10

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Split:
    x_train: FloatArray
    y_train: IntArray
    x_holdout: FloatArray
    y_holdout: IntArray


def digits_split() -> Split:
    """The 8x8 digits images (shipped with scikit-learn, so no download), stratified."""
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_holdout, y_train, y_holdout = train_test_split(
        x, y, test_size=HOLDOUT_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return Split(x_train, y_train, x_holdout, y_holdout)
