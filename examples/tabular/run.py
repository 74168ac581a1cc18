"""A tabular Pipeline over named numeric and string columns, registered from its DataFrame,
served, and asked with records.

    make example-tabular        # or: .venv/bin/python examples/tabular/run.py

The wine set that ships with scikit-learn, as a DataFrame of thirteen measures, with two columns a
real table would have: ``strength``, a string derived from the alcohol content, and ``cellar``, a
categorical drawn at random (seeded). The label is the cultivar's name, a string. The model is a
scikit-learn Pipeline: a ColumnTransformer one-hot encoding the two text columns, then
histogram gradient boosting. It is registered with ``mlcanary.models.register`` from the
DataFrame (the schema records each column's name and dtype, and the categorical's categories),
served with ``mlcanary serve``, and asked with records; a record with a wrong field gets a 422
naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlcanary.models import register
from mlcanary.models.registry import ModelRef, ModelVersion, VersionNotFoundError, get_version
from mlcanary.serving.launcher import ServeOptions, free_port, running_server

SEED = 20261203
CULTIVARS = np.array(["barolo", "grignolino", "barbera"])


def wine_table() -> tuple[pd.DataFrame, np.ndarray]:
    bunch = load_wine(as_frame=True)
    table = bunch.data.rename(columns=lambda c: c.replace("/", "_"))
    bands = pd.cut(table["alcohol"], 3, labels=["light", "medium", "strong"])
    table["strength"] = bands.astype(str)
    rng = np.random.default_rng(SEED)
    table["cellar"] = pd.Categorical(rng.choice(["north", "south", "east"], len(table)))
    return table, CULTIVARS[bunch.target.to_numpy()]


def register_pipeline(console: Console) -> tuple[ModelVersion, pd.DataFrame]:
    table, labels = wine_table()
    x_train, x_test, y_train, y_test = train_test_split(
        table, labels, test_size=0.3, random_state=SEED, stratify=labels
    )
    try:
        version = get_version(ModelRef("wine", "v1"))
    except VersionNotFoundError:
        encode = ColumnTransformer(
            [("text", OneHotEncoder(handle_unknown="ignore"), ["strength", "cellar"])],
            remainder="passthrough",
        )
        boost = HistGradientBoostingClassifier(random_state=SEED)
        model = Pipeline([("encode", encode), ("boost", boost)]).fit(x_train, y_train)
        version = register(
            model,
            name="wine",
            version="v1",
            example=x_test.head(20),
            holdout=(x_test, y_test),
            description="one-hot text columns, then histogram gradient boosting",
        )
    console.print(f"{version.ref}: {version.schema.describe()}")
    console.print(f"  classes {list(version.output.classes)}, holdout {dict(version.holdout)}")  # type: ignore[union-attr]
    return version, x_test


def _record(row: pd.Series) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def main() -> int:
    console = Console()
    console.rule("register the Pipeline from its DataFrame")
    version, x_test = register_pipeline(console)
    options = ServeOptions(model=str(version.ref), port=free_port(), device="cpu")
    console.rule(f"serve {version.ref} and ask it with records")
    log = Path("reports/examples/tabular/serve.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with running_server(options, log) as url:
        records = [_record(row) for _, row in x_test.head(3).astype(object).iterrows()]
        answer = httpx.post(f"{url}/predict", json={"instances": records}, timeout=30).json()
        console.print(f"predictions: {answer['predictions']}")
        console.print(
            f"probabilities of the first: {np.round(answer['probabilities'][0], 3).tolist()}"
        )
        bad = {**records[0], "cellar": "west"}
        refused = httpx.post(f"{url}/predict", json={"instances": [bad]}, timeout=30)
        console.print(
            f"a record with cellar='west': {refused.status_code} {refused.json()['error']}"
        )
    return 0 if refused.status_code == 422 else 1


if __name__ == "__main__":
    sys.exit(main())
