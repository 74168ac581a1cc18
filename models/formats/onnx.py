"""ONNX graphs, served with onnxruntime: made by skl2onnx, ``torch.onnx.export`` or anything else.

Why ONNX beside the frameworks' own formats: a graph is data, run by one runtime on the CPU or
the GPU without the training framework, so an image of an ONNX version carries neither
scikit-learn nor torch. Reading one runs no code; a graph that keeps its weights in external
files is refused, since those references could name any file on the serving machine.

A scikit-learn estimator can also be registered in this format (``format="onnx"``): it is
converted with skl2onnx, its inputs typed from the version's schema. What a graph's outputs
mean is recorded at registration: a label and a probability output (skl2onnx's classifiers), one
row of class scores (logits, or probabilities when every row of the example sums to one), or the
regression values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlcanary.models.formats.base import (
    Described,
    FormatError,
    LoadContext,
    ReadContext,
    SaveContext,
    SavedArtifact,
)
from mlcanary.models.schema import Batch, Column, ColumnsSchema, TensorSchema
from mlcanary.models.task import ClassificationOutput, RawOutput, Task

__all__ = ["FORMAT", "OnnxFormat"]

ARTIFACT_NAME = "model.onnx"
# ONNX TensorProto element types a request can carry, and how numpy names them.
_ELEMENT_TYPES = {
    1: "float32",
    11: "float64",
    7: "int64",
    6: "int32",
    2: "uint8",
    9: "bool",
    8: "string",
}
# How onnxruntime names an input's type, and the numpy dtype a feed of it must have.
_FEED_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


def _load_proto(data: bytes, where: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as exc:
        raise FormatError(f"{where} is not an ONNX model: {exc}") from None
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise FormatError(
                f"{where} keeps tensor {tensor.name!r} in an external file; save the graph with "
                "its weights inside (onnx.save(model, path, save_as_external_data=False))"
            )
    return model


def _element(value_info: Any) -> str:
    kind = value_info.type.tensor_type.elem_type
    if kind not in _ELEMENT_TYPES:
        raise FormatError(
            f"input {value_info.name!r} has an ONNX element type ({kind}) a request cannot carry"
        )
    return _ELEMENT_TYPES[kind]


def _dims(value_info: Any) -> list[int | None]:
    return [
        d.dim_value if d.HasField("dim_value") else None
        for d in value_info.type.tensor_type.shape.dim
    ]


def _graph_schema(model: Any) -> TensorSchema | ColumnsSchema:
    inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(inputs) == 1 and len(_dims(inputs[0])) >= 2 and _element(inputs[0]) != "string":
        dims = _dims(inputs[0])[1:]
        if any(d is None or d < 1 for d in dims):
            raise FormatError(
                f"input {inputs[0].name!r} has a free dimension besides the batch: {dims}"
            )
        shape = [d for d in dims if d is not None]
        return TensorSchema.model_validate({"shape": shape, "dtype": _element(inputs[0])})
    columns = []
    for value_info in inputs:
        dims = _dims(value_info)
        if dims[1:] not in ([], [1]):
            raise FormatError(f"input {value_info.name!r} is not one column (shape {dims})")
        columns.append(
            Column.model_validate({"name": value_info.name, "dtype": _element(value_info)})
        )
    return ColumnsSchema(columns=tuple(columns))


def _classes(model: Any) -> tuple[Any, ...] | None:
    """The class labels a scikit-learn converter wrote into its classifier node, if any."""
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_ints":
                return tuple(int(v) for v in attribute.ints)
            if attribute.name == "classlabels_strings":
                return tuple(v.decode() for v in attribute.strings)
    return None


def _from_sklearn(estimator: Any, schema: TensorSchema | ColumnsSchema) -> Any:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    kinds = {
        "float32": FloatTensorType,
        "float64": DoubleTensorType,
        "int64": Int64TensorType,
        "int32": Int64TensorType,
        "string": StringTensorType,
        "category": StringTensorType,
    }
    if isinstance(schema, TensorSchema):
        initial = [("input", FloatTensorType([None, *schema.shape]))]
    else:
        unsupported = [c.name for c in schema.columns if c.dtype not in kinds]
        if unsupported:
            raise FormatError(f"skl2onnx cannot take the columns {unsupported} (bool)")
        initial = [(c.name, kinds[c.dtype]([None, 1])) for c in schema.columns]
    try:
        return to_onnx(estimator, initial_types=initial, options={"zipmap": False})
    except Exception as exc:  # skl2onnx raises many types for estimators it cannot convert
        raise FormatError(f"skl2onnx cannot convert this estimator: {exc}") from None


class _SessionRunner:
    def __init__(self, data: bytes, options: Mapping[str, Any], context: LoadContext) -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if context.device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session_options = ort.SessionOptions()
        # One thread per worker, like torch's: small batches gain nothing from more, and spinning
        # threads on a shared CPU lengthen the tail. Scale with workers instead.
        session_options.intra_op_num_threads = 1
        session_options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(data, session_options, providers=providers)
        self._device = (
            "cuda" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        )
        self._dtypes = {
            i.name: _FEED_DTYPES.get(i.type, np.float32) for i in self._session.get_inputs()
        }
        self._outputs: str = options.get("outputs", "values")
        self._classes = (
            context.output.classes if isinstance(context.output, ClassificationOutput) else ()
        )

    @property
    def device(self) -> str:
        return self._device

    def outputs(self, batch: Batch) -> list[Any]:
        """The graph's outputs as onnxruntime returns them."""
        if isinstance(batch, dict):
            feeds = {
                name: values.reshape(-1, 1).astype(self._dtypes[name], copy=False)
                for name, values in batch.items()
            }
        else:
            (name,) = self._dtypes
            feeds = {name: batch.astype(self._dtypes[name], copy=False)}
        return list(self._session.run(None, feeds))

    def run(self, batch: Batch) -> RawOutput:
        results = self.outputs(batch)
        if self._outputs == "label+probabilities":
            probabilities = results[1]
            if isinstance(probabilities, list):  # a ZipMap: one {class: probability} per row
                probabilities = np.array([[row[c] for c in self._classes] for row in probabilities])
            return RawOutput(labels=np.asarray(results[0]), probabilities=np.asarray(probabilities))
        if self._outputs == "scores":
            return RawOutput(scores=np.asarray(results[0]))
        if self._outputs == "probabilities":
            return RawOutput(probabilities=np.asarray(results[0]))
        return RawOutput(values=np.asarray(results[0]))


def _output_kind(model: Any, task: Task, example_outputs: list[Any] | None) -> str:
    """What the graph's outputs mean, recorded so the runner need not guess at every call."""
    if task is Task.REGRESSION:
        return "values"
    if len(model.graph.output) >= 2:
        return "label+probabilities"
    if example_outputs is not None:
        first = np.asarray(example_outputs[0], dtype=np.float64)
        if (
            first.ndim == 2
            and (first >= 0).all()
            and np.allclose(first.sum(axis=1), 1.0, atol=1e-4)
        ):
            return "probabilities"
    return "scores"


class OnnxFormat:
    name = "onnx"
    framework = "onnx"

    def accepts(self, model: Any) -> bool:
        return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")

    def _proto(self, model: Any, schema: TensorSchema | ColumnsSchema | None) -> Any:
        if self.accepts(model):
            return model
        if schema is None:
            raise FormatError("converting to ONNX needs the version's schema (give an example)")
        return _from_sklearn(model, schema)

    def describe(self, model: Any, example: Batch | None) -> Described:
        if not self.accepts(model):  # a scikit-learn estimator, converted at save time
            from mlcanary.models.formats.skops import describe_estimator

            described = describe_estimator(model)
            return Described(
                task=described.task,
                classes=described.classes,
                probabilities=described.probabilities,
                schema=described.schema,
                float_dtype="float32",
            )
        classes = _classes(model)
        return Described(
            task=Task.CLASSIFICATION if classes is not None else None,
            classes=classes,
            probabilities=classes is not None and len(model.graph.output) >= 2,
            schema=_graph_schema(model),
        )

    def read(self, path: Path, context: ReadContext) -> Any:
        return _load_proto(path.read_bytes(), str(path))

    def save(self, model: Any, directory: Path, context: SaveContext) -> SavedArtifact:
        proto = self._proto(model, context.schema)
        path = directory / ARTIFACT_NAME
        data = proto.SerializeToString()
        path.write_bytes(data)
        task = (
            Task.CLASSIFICATION
            if isinstance(context.output, ClassificationOutput)
            else Task.REGRESSION
        )
        outputs = None
        if context.example is not None:
            probe = _SessionRunner(data, {}, LoadContext(context.schema, context.output, "cpu"))
            outputs = probe.outputs(context.example)
        return SavedArtifact(path, {"outputs": _output_kind(proto, task, outputs)})

    def load(self, path: Path, options: Mapping[str, Any], context: LoadContext) -> _SessionRunner:
        data = path.read_bytes()
        _load_proto(data, str(path))
        return _SessionRunner(data, options, context)


FORMAT = OnnxFormat()
