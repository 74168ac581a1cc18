"""What serving needs from a loaded model version, whatever its framework."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "IntArray", "Predictor"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Predictor(Protocol):
    """A loaded model: rows of features in, one class label per row out."""

    @property
    def device(self) -> str: ...

    def predict(self, rows: FloatArray) -> IntArray: ...
