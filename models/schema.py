"""What a model version takes as input: a tensor of one shape and dtype, or named columns.

Why a schema recorded at registration: it is the contract of ``/predict``. The service validates
every request against it and refuses what does not fit with a 4xx naming the field, instead of
handing the model something that makes it raise (a 500 that fails a whole batch) or, worse,
silently predict on garbage; and the service's OpenAPI document shows it, so schema-driven
clients and fuzzers see the version's own input.

It is recorded from an example of the real input (a numpy array, or a pandas DataFrame with its
column names and dtypes, strings and categoricals included), so it says what the model was
trained on rather than what someone remembered to write down.

Parsing is fast for good input and precise for bad input: a well-formed tensor batch goes
through one numpy conversion and a few vectorised checks; only when those show something wrong
is the batch walked to name the first bad value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlcanary.models.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Batch",
    "Column",
    "ColumnBatch",
    "ColumnsSchema",
    "InputSchema",
    "TensorSchema",
    "batch_rows",
    "concat_batches",
    "schema_from_example",
]

TensorDtype = Literal["float32", "float64", "int32", "int64", "uint8", "bool"]
ColumnDtype = Literal["float32", "float64", "int32", "int64", "bool", "string", "category"]
# A batch as the model takes it: one array of shape (rows, *shape), or one array per column.
ColumnBatch = dict[str, npt.NDArray[Any]]
Batch = npt.NDArray[Any] | ColumnBatch
_MAX_STRING = 4096  # characters in one string value: a request is data, not a document


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _range(dtype: str) -> tuple[float, float]:
    """The smallest and largest values of a numeric dtype; integers exactly (a float would
    round the bounds of int64 and let 2**63 through)."""
    if dtype.startswith("float"):
        info = np.finfo(dtype)
        return float(info.min), float(info.max)
    bounds = np.iinfo(dtype)
    return int(bounds.min), int(bounds.max)


class TensorSchema(_Frozen):
    """Each row is an array of ``shape`` (e.g. ``[64]``, ``[3, 32, 32]``) of ``dtype``."""

    kind: Literal["tensor"] = "tensor"
    shape: tuple[Annotated[int, Field(ge=1)], ...] = Field(min_length=1, max_length=8)
    dtype: TensorDtype = "float64"

    def describe(self) -> str:
        return f"rows of shape {list(self.shape)} ({self.dtype})"

    def parse(self, instances: list[Any], *, booleans_seen: bool = True) -> npt.NDArray[Any]:
        """``booleans_seen`` False promises that the body holds no JSON true/false, which numpy
        would otherwise turn into 1 and 0 among numbers unnoticed (the caller checks the raw
        bytes, far cheaper than walking the values)."""
        try:
            rows = np.array(instances)
        except ValueError:  # ragged nesting
            rows = np.empty(0, dtype=object)
        fast = rows.shape[1:] == self.shape and (
            rows.dtype.kind == "b" if self.dtype == "bool" else rows.dtype.kind in "iuf"
        )
        if fast and (self.dtype == "bool" or not booleans_seen):
            checked = self._checked(rows)
            if checked is not None:
                return checked
        raise self._locate(instances)

    def _checked(self, rows: npt.NDArray[Any]) -> npt.NDArray[Any] | None:
        """The rows in the schema's dtype, or None when some value does not fit it."""
        if self.dtype == "bool":
            return rows
        if self.dtype.startswith(("int", "uint")) and rows.dtype.kind == "f":
            return None
        low, high = _range(self.dtype)
        if rows.size and (rows.min() < low or rows.max() > high):
            return None
        return rows.astype(self.dtype, copy=False)

    def _locate(self, instances: list[Any]) -> InputError:
        """The first value that does not fit, named by its path (``instances[3][0][7]``)."""
        low, high = (0.0, 0.0) if self.dtype == "bool" else _range(self.dtype)

        def walk(value: Any, dims: Sequence[int], path: str) -> InputError | None:
            if not dims:
                return self._scalar_problem(value, path, low, high)
            if not isinstance(value, list):
                return InputError("invalid_row", f"{path} must be a list of {dims[0]}", path)
            if len(value) != dims[0]:
                return InputError(
                    "wrong_shape",
                    f"{path} has {len(value)} values; the model expects {self.describe()}",
                    path,
                )
            for index, item in enumerate(value):
                problem = walk(item, dims[1:], f"{path}[{index}]")
                if problem is not None:
                    return problem
            return None

        for index, row in enumerate(instances):
            problem = walk(row, self.shape, f"instances[{index}]")
            if problem is not None:
                return problem
        return InputError("invalid_instances", f"instances must be {self.describe()}", "instances")

    def _scalar_problem(self, value: Any, path: str, low: float, high: float) -> InputError | None:
        if self.dtype == "bool":
            if isinstance(value, bool):
                return None
            return InputError("wrong_type", f"{path} must be true or false", path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = f"{type(value).__name__} {value!r:.40}"
            return InputError("wrong_type", f"{path} is {shown}; numbers only", path)
        if self.dtype.startswith(("int", "uint")) and not isinstance(value, int):
            return InputError(
                "wrong_type", f"{path} is {value!r}; {self.dtype} takes integers", path
            )
        if not low <= value <= high:
            return InputError("out_of_range", f"{path} = {value!r} overflows {self.dtype}", path)
        return None

    def to_batch(self, data: Any) -> npt.NDArray[Any]:
        """In-memory rows (an example, a holdout set) as the model takes them: an array, or a
        table whose columns are the flattened values (or whose one column holds nested lists)."""
        columns = getattr(data, "columns", None)
        if columns is not None and len(columns) == 1 and data[columns[0]].dtype == object:
            data = data[columns[0]].tolist()
        rows = np.asarray(data)
        flat = rows.ndim == 2 and rows.shape[1] == math.prod(self.shape)
        if rows.shape[1:] != self.shape and flat:
            rows = rows.reshape(len(rows), *self.shape)  # a table's columns: flattened rows
        if rows.shape[1:] != self.shape:
            raise ValueError(
                f"rows of shape {list(rows.shape[1:])}; the model takes {self.describe()}"
            )
        checked = self._checked(rows)
        if checked is None:
            raise ValueError(f"the rows do not fit {self.dtype}")
        return checked

    def json_schema(self) -> dict[str, Any]:
        number: dict[str, Any] = (
            {"type": "boolean"}
            if self.dtype == "bool"
            else {"type": "integer" if self.dtype.startswith(("int", "uint")) else "number"}
        )
        for size in reversed(self.shape):
            number = {"type": "array", "items": number, "minItems": size, "maxItems": size}
        return number

    def example_row(self) -> Any:
        value: Any = False if self.dtype == "bool" else 0
        for size in reversed(self.shape):
            value = [value] * size
        return value


class Column(_Frozen):
    """One named input column. ``category`` columns take one of ``categories``; ``string``
    columns any text; float columns also take null, a missing value (NaN)."""

    name: str = Field(min_length=1, max_length=256)
    dtype: ColumnDtype
    categories: tuple[str, ...] | None = None

    @field_validator("categories")
    @classmethod
    def _only_for_categories(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("a category column needs at least one category")
        return value

    def json_schema(self) -> dict[str, Any]:
        if self.dtype == "category":
            return {"type": "string", "enum": list(self.categories or ())}
        if self.dtype == "string":
            return {"type": "string", "maxLength": _MAX_STRING}
        if self.dtype == "bool":
            return {"type": "boolean"}
        if self.dtype.startswith("int"):
            return {"type": "integer"}
        return {"type": ["number", "null"]}

    def example(self) -> Any:
        if self.dtype == "category":
            return (self.categories or ("",))[0]
        return {"string": "text", "bool": False}.get(self.dtype, 0)

    def convert(self, values: list[Any], row_paths: list[str]) -> npt.NDArray[Any]:
        """The column's values as an array; an InputError names the first that does not fit."""
        paths = [f"{p}.{self.name}" for p in row_paths]
        if self.dtype in ("string", "category"):
            return self._strings(values, paths)
        if self.dtype == "bool":
            for value, path in zip(values, paths, strict=True):
                if not isinstance(value, bool):
                    raise InputError("wrong_type", f"{path} must be true or false", path)
            return np.array(values, dtype=bool)
        return self._numbers(values, paths)

    def _strings(self, values: list[Any], paths: list[str]) -> npt.NDArray[Any]:
        for value, path in zip(values, paths, strict=True):
            if not isinstance(value, str):
                raise InputError("wrong_type", f"{path} must be a string", path)
            if len(value) > _MAX_STRING:
                raise InputError("too_long", f"{path} exceeds {_MAX_STRING} characters", path)
            if self.categories is not None and value not in self.categories:
                allowed = ", ".join(self.categories[:10])
                message = f"{path} = {value!r:.40} is not one of {allowed}"
                raise InputError("unknown_category", message, path)
        return np.array(values, dtype=object)

    def _numbers(self, values: list[Any], paths: list[str]) -> npt.NDArray[Any]:
        integer = self.dtype.startswith("int")
        low, high = _range(self.dtype)
        for value, path in zip(values, paths, strict=True):
            if value is None and not integer:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                kind = "integers" if integer else "numbers (or null)"
                message = f"{path} is {value!r:.40}; {self.dtype} takes {kind}"
                raise InputError("wrong_type", message, path)
            if integer and not isinstance(value, int):
                message = f"{path} is {value!r}; {self.dtype} takes integers"
                raise InputError("wrong_type", message, path)
            if not low <= value <= high:
                message = f"{path} = {value!r} overflows {self.dtype}"
                raise InputError("out_of_range", message, path)
        if integer:
            return np.array(values, dtype=self.dtype)
        return np.array([math.nan if v is None else v for v in values], dtype=self.dtype)


class ColumnsSchema(_Frozen):
    """Each row is a record with exactly these named columns."""

    kind: Literal["columns"] = "columns"
    columns: tuple[Column, ...] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _unique(cls, value: tuple[Column, ...]) -> tuple[Column, ...]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError(f"column names repeat: {names}")
        return value

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def describe(self) -> str:
        return f"records with the fields {', '.join(self.names)}"

    def parse(self, instances: list[Any]) -> ColumnBatch:
        expected = set(self.names)
        paths = [f"instances[{i}]" for i in range(len(instances))]
        for record, path in zip(instances, paths, strict=True):
            if not isinstance(record, dict):
                raise InputError(
                    "invalid_row", f"{path} must be an object: {self.describe()}", path
                )
            if record.keys() != expected:
                unknown = sorted(record.keys() - expected)
                if unknown:
                    raise InputError(
                        "unknown_field",
                        f"{path}.{unknown[0]} is not an input of this model",
                        f"{path}.{unknown[0]}",
                    )
                missing = next(n for n in self.names if n not in record)
                raise InputError(
                    "missing_field", f"{path}.{missing} is missing", f"{path}.{missing}"
                )
        return {c.name: c.convert([r[c.name] for r in instances], paths) for c in self.columns}

    def to_batch(self, data: Any) -> ColumnBatch:
        """A DataFrame (an example, a holdout set) as the model takes it: one array per column."""
        missing = [name for name in self.names if name not in getattr(data, "columns", ())]
        if missing:
            raise ValueError(f"the data lacks the columns {missing}")
        batch: ColumnBatch = {}
        for column in self.columns:
            values = data[column.name]
            if column.dtype in ("string", "category"):
                batch[column.name] = np.asarray(values.astype(str), dtype=object)
            else:
                batch[column.name] = np.asarray(values, dtype=column.dtype)
        return batch

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {c.name: c.json_schema() for c in self.columns},
            "required": self.names,
            "additionalProperties": False,
        }

    def example_row(self) -> dict[str, Any]:
        return {c.name: c.example() for c in self.columns}


InputSchema = Annotated[TensorSchema | ColumnsSchema, Field(discriminator="kind")]


def batch_rows(batch: Batch) -> int:
    if isinstance(batch, dict):
        return len(next(iter(batch.values())))
    return len(batch)


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """Requests that arrived together, as one model call's input."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    if isinstance(first, dict):
        return {
            name: np.concatenate([b[name] for b in batches if isinstance(b, dict)])
            for name in first
        }
    return np.concatenate([b for b in batches if not isinstance(b, dict)])


_PANDAS_KINDS: dict[str, ColumnDtype] = {
    "f": "float64",
    "i": "int64",
    "u": "int64",
    "b": "bool",
}


def _column(name: str, series: pd.Series[Any]) -> Column:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return Column(
            name=name, dtype="category", categories=tuple(str(c) for c in dtype.categories)
        )
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        if not all(isinstance(v, str) for v in series.dropna()):
            raise ValueError(f"column {name!r} mixes strings with other values; give it one type")
        return Column(name=name, dtype="string")
    kind = np.dtype(dtype).kind
    if kind not in _PANDAS_KINDS:
        raise ValueError(f"column {name!r} has dtype {dtype}, which a request cannot carry")
    if kind == "f" and np.dtype(dtype) == np.float32:
        return Column(name=name, dtype="float32")
    return Column(name=name, dtype=_PANDAS_KINDS[kind])


def schema_from_example(example: Any) -> TensorSchema | ColumnsSchema:
    """The schema of a model's input, from an example of it: a numpy array (rows first) or a
    pandas DataFrame (its columns' names and dtypes)."""
    if hasattr(example, "columns") and hasattr(example, "dtypes"):
        return ColumnsSchema(columns=tuple(_column(str(n), example[n]) for n in example.columns))
    array = np.asarray(example)
    if array.ndim < 2:
        raise ValueError(
            f"the example must hold rows: an array of shape (rows, ...), not {array.shape}"
        )
    known: dict[str, TensorDtype] = {name: name for name in get_args(TensorDtype)}
    widened: dict[str, TensorDtype] = {"f": "float64", "i": "int64", "u": "int64"}
    dtype = known.get(array.dtype.name) or widened.get(array.dtype.kind)
    if dtype is None:
        raise ValueError(f"an example of dtype {array.dtype} cannot be sent as JSON numbers")
    return TensorSchema(shape=tuple(int(d) for d in array.shape[1:]), dtype=dtype)
