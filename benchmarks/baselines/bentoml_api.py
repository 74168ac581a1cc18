"""BentoML's default endpoint style, ``@bentoml.api`` with typed arguments: the starting point.

Kept to show what mlcanary's service changed, measured in the same run.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np

from mlcanary.models.registry import ModelRef, load_predictor


@bentoml.service(name="plain", workers=1)
class PlainBentoService:
    def __init__(self) -> None:
        ref = ModelRef.parse(os.environ["MLCANARY_MODEL"])
        self._version, self._predictor = load_predictor(ref, "cpu")

    @bentoml.api  # type: ignore[untyped-decorator]
    async def predict(self, instances: list[list[float]]) -> dict[str, object]:
        labels = self._predictor.predict(np.asarray(instances, dtype=np.float64))
        return {"version": self._version.ref.version, "predictions": labels.values}
