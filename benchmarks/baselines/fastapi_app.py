"""A plain FastAPI app, written the way its documentation suggests: a pydantic request model."""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from mlcanary.models.registry import ModelRef, load_predictor

_version, _predictor = load_predictor(ModelRef.parse(os.environ["MLCANARY_MODEL"]), "cpu")
app = FastAPI()


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
async def predict(request: PredictRequest) -> dict[str, object]:
    labels = _predictor.predict(np.asarray(request.instances, dtype=np.float64))
    return {"version": _version.ref.version, "predictions": labels.values}
