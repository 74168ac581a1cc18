"""A regression model rolled out for real: a better version promoted, a worse one rolled back.

    make example-diabetes        # or: .venv/bin/python examples/diabetes/run.py [--fast]

The diabetes set that ships with scikit-learn (a disease-progression score from ten measures),
split 60/40 with a fixed seed. Three versions, each registered with ``mlcanary.models.register``
and its holdout MAE:

* v1: ridge regression, alpha 1 (the stable baseline);
* v2: ridge regression, alpha 0.1: a lower MAE;
* v3: a model that predicts the training mean whatever the input: a far higher MAE.

Then, on the local platform (the services, the router, a real Prometheus) under labeled Locust
traffic sent from the holdout rows (``--data``), two rollouts judged on MAE
(``analysis.error``): v1 -> v2, promoted, and v2 -> v3, rolled back. The report and plot are
written to the work folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.datasets import load_diabetes
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from mlcanary.local.scenario import Expected, Traffic, run_rollouts
from mlcanary.models import register
from mlcanary.models.registry import ModelRef, VersionNotFoundError, get_version
from mlcanary.rollout.status import Phase

HERE = Path(__file__).resolve().parent
SEED = 20261203
VERSIONS: dict[str, tuple[str, Any]] = {
    "v1": ("ridge regression, alpha 1 (baseline)", Ridge(alpha=1.0)),
    "v2": ("ridge regression, alpha 0.1 (better)", Ridge(alpha=0.1)),
    "v3": ("predicts the training mean (worse)", DummyRegressor()),
}


def register_versions(console: Console) -> pd.DataFrame:
    """Train and register what is missing; the holdout rows, with their target, as a table."""
    bunch = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.4, random_state=SEED
    )
    for version, (description, model) in VERSIONS.items():
        try:
            registered = get_version(ModelRef("diabetes", version))
        except VersionNotFoundError:
            registered = register(
                model.fit(x_train, y_train),
                name="diabetes",
                version=version,
                example=x_test[:20],
                holdout=(x_test, y_test),
                description=description,
            )
        console.print(
            f"{registered.ref}: {description}, holdout MAE {registered.holdout['mae']:.1f}"
        )
    table = pd.DataFrame(x_test, columns=bunch.feature_names)
    table["progression"] = np.asarray(y_test)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="2-second analysis intervals")
    parser.add_argument("--users", type=int, default=8, help="Locust users")
    parser.add_argument("--workdir", type=Path, default=Path("reports/examples/diabetes"))
    args = parser.parse_args()
    console = Console()
    console.rule("train and register three versions of the diabetes model")
    table = register_versions(console)
    args.workdir.mkdir(parents=True, exist_ok=True)
    holdout = args.workdir / "holdout.csv"
    table.to_csv(holdout, index=False)
    rollouts = (
        Expected(HERE / "better.yaml", Phase.SUCCEEDED),
        Expected(HERE / "worse.yaml", Phase.ROLLED_BACK),
    )
    traffic = Traffic(users=args.users, data=holdout, label_column="progression")
    code = run_rollouts(rollouts, args.workdir, console, traffic=traffic, fast=args.fast)
    if code == 0:
        console.print("[green]as expected: v2 promoted on its lower MAE, v3 rolled back[/]")
    return code


if __name__ == "__main__":
    sys.exit(main())
