"""A plain Flask app, the classic way: run under gunicorn's synchronous workers."""

from __future__ import annotations

import os

import numpy as np
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from mlcanary.models.registry import ModelRef, load_predictor

_version, _predictor = load_predictor(ModelRef.parse(os.environ["MLCANARY_MODEL"]), "cpu")
app = Flask(__name__)


@app.post("/predict")
def predict() -> ResponseReturnValue:
    body = request.get_json()
    labels = _predictor.predict(np.asarray(body["instances"], dtype=np.float64))
    return jsonify(version=_version.ref.version, predictions=labels.values)
