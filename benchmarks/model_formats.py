"""The same model in two formats, side by side: native scikit-learn against onnxruntime, and an
eager torch network against its ``torch.export`` program.

Run: ``make bench-models`` (``python -m benchmarks.model_formats [--out reports/model-formats]``)

Each pair is one trained model registered twice in a scratch model store, then loaded back the
way a server loads it (`mlcanary.models.registry.load_predictor`, on the CPU, one thread as a
serving worker has) and called on batches of 1 and 64 rows of its own holdout: the time is the
whole predictor call, answers interpreted. Calls alternate between the two formats, so that the
machine's state weighs on both alike; the median of each is reported, with the ratio.

The models: the digits logistic regression (v1's recipe), a 200-tree random forest on the same
rows, and the digits CNN (v2's recipe, as an eager ``torch.nn.Module`` built from its class from
safetensors, and as an exported program).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 400
BATCHES = (1, 64)


def _models() -> list[tuple[str, Any, dict[str, Any], dict[str, Any], Any]]:
    """(name, model, first format's options, second's, holdout rows) for each pair."""
    import torch
    from sklearn.ensemble import RandomForestClassifier

    from mlcanary.models.reference.catalog import REFERENCE_VERSIONS
    from mlcanary.models.reference.dataset import digits_split
    from mlcanary.models.reference.nets import DigitsCNN
    from mlcanary.models.reference.training import train_net

    split = digits_split()
    logistic = next(r for r in REFERENCE_VERSIONS if r.version == "v1").fit(split)
    forest = RandomForestClassifier(200, random_state=7, n_jobs=1).fit(split.x_train, split.y_train)
    torch.manual_seed(7)
    cnn = train_net(DigitsCNN(channels=32), split.x_train, split.y_train, epochs=5, seed=7)
    network = {"task": "classification", "classes": list(range(10))}
    return [
        ("logistic regression", logistic, {}, {"format": "onnx"}, split.x_holdout),
        ("random forest, 200 trees", forest, {}, {"format": "onnx"}, split.x_holdout),
        (
            "digits CNN",
            cnn,
            {
                **network,
                "format": "safetensors",
                "architecture": "mlcanary.models.reference.nets:DigitsCNN",
                "config": {"channels": 32},
            },
            {**network, "format": "torch-export"},
            split.x_holdout,
        ),
    ]


def _time(predict: Any, batch: Any) -> float:
    started = time.perf_counter()
    predict(batch)
    return time.perf_counter() - started


def run() -> list[dict[str, Any]]:
    import torch

    from mlcanary.models import register
    from mlcanary.models.registry import load_predictor

    torch.set_num_threads(1)
    rows = []
    for index, (name, model, first, second, holdout) in enumerate(_models()):
        predictors = []
        for side, options in enumerate((first, second)):
            version = register(
                model, name=f"bench{index}", version=f"f{side}", example=holdout[:64], **options
            )
            loaded = load_predictor(version.ref, "cpu")
            predictors.append((version.format, loaded[0].schema, loaded[1]))
        for size in BATCHES:
            batches = [schema.to_batch(holdout[:size]) for _, schema, _ in predictors]
            times: list[list[float]] = [[], []]
            for _ in range(20):  # warm-up
                for side, (_, _, predictor) in enumerate(predictors):
                    _time(predictor.predict, batches[side])
            for _ in range(ROUNDS):
                for side, (_, _, predictor) in enumerate(predictors):
                    times[side].append(_time(predictor.predict, batches[side]))
            medians = [statistics.median(t) * 1e6 for t in times]
            rows.append(
                {
                    "model": name,
                    "batch": size,
                    "format_a": predictors[0][0],
                    "median_us_a": round(medians[0], 1),
                    "format_b": predictors[1][0],
                    "median_us_b": round(medians[1], 1),
                    "b_over_a": round(medians[1] / medians[0], 3),
                }
            )
            print(
                f"{name:<26} batch {size:>3}  {predictors[0][0]:<12} {medians[0]:9.1f} us  "
                f"{predictors[1][0]:<12} {medians[1]:9.1f} us  ratio {medians[1] / medians[0]:.2f}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/model-formats"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlcanary-bench-models-") as store:
        os.environ["BENTOML_HOME"] = store
        rows = run()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_formats.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out / 'model_formats.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
