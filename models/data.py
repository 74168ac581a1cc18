"""Tables of rows from files: an example or holdout set to register with, labeled traffic to
load-test with. CSV, JSON lines and Parquet, read with pandas (Parquet through pyarrow).

Why one reader: ``mlcanary models import --example/--holdout`` and the locustfiles' ``--data``
take the same files, and must read a column the same way in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["features_and_labels", "read_table"]

_READERS = (".csv", ".jsonl", ".parquet")


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    raise ValueError(f"{path.name}: data files are {', '.join(_READERS)}")


def features_and_labels(table: pd.DataFrame, label_column: str) -> tuple[pd.DataFrame, Any]:
    """The input columns and the label column of a table."""
    if label_column not in table.columns:
        raise ValueError(f"no column {label_column!r}; the columns are {list(table.columns)}")
    return table.drop(columns=[label_column]), table[label_column].to_numpy()
