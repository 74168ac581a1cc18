"""PyTorch networks as ``torch.export`` programs: the graph and its weights, no Python class.

Why: a program runs without the user's code, so an image needs nothing but torch, and what it
computes is fixed at registration. The artifact is mlcanary's own, one safetensors file: the
weights, buffers and tensor constants as tensors, the program's JSON in the file's metadata.
Loading it unpickles nothing, and the JSON is checked before torch reads it
(`torch_program`). A ``.pt2`` made with ``torch.export.save`` is imported through a reader that
unpickles nothing either (`torch_pt2`), then saved the same way.

A network registered in memory is exported with its example, the batch dimension left free.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mlcanary.models.formats.base import (
    Described,
    FormatError,
    LoadContext,
    ReadContext,
    SaveContext,
    SavedArtifact,
)
from mlcanary.models.formats.torch_common import (
    TorchRunner,
    describe_network,
    example_tensor,
    is_torch_model,
    network_dtype,
)
from mlcanary.models.formats.torch_program import (
    UnsafeProgramError,
    deserialize_program,
    parameter_names,
    sanitize_program,
)
from mlcanary.models.schema import Batch, TensorSchema

__all__ = ["FORMAT", "TorchExportFormat"]

ARTIFACT_NAME = "program.safetensors"
_TAG = "mlcanary.torch-export.v1"


def _plain(name: str, tensor: object) -> torch.Tensor:
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or not isinstance(
        tensor, torch.Tensor
    ):
        raise FormatError(f"{name}: a {type(tensor).__name__} cannot be stored without pickle")
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise FormatError(f"{name}: {tensor.layout} or quantized tensors are not stored")
    # safetensors takes contiguous tensors that share no memory: tied weights get a copy each.
    return tensor.detach().to("cpu").contiguous().clone()


def _export(module: torch.nn.Module, example: Batch | None) -> torch.export.ExportedProgram:
    from torch.export import Dim

    tensor = example_tensor(example, network_dtype(module))
    try:
        return torch.export.export(
            module.eval(), (tensor,), dynamic_shapes=({0: Dim("batch", min=1)},)
        )
    except Exception as exc:  # torch.export raises many types for graphs it cannot capture
        raise FormatError(f"torch.export could not export the network: {exc}") from None


def _program(model: Any, example: Batch | None) -> torch.export.ExportedProgram:
    if isinstance(model, torch.export.ExportedProgram):
        return model
    return _export(model, example)


def _input_schema(program: torch.export.ExportedProgram) -> TensorSchema:
    """The program's one user input, as a schema: its shape past the batch dimension."""
    inputs = [
        spec.arg.name
        for spec in program.graph_signature.input_specs
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
    ]
    if len(inputs) != 1:
        raise FormatError(f"the program takes {len(inputs)} inputs; mlcanary serves one tensor")
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == inputs[0])
    value = node.meta["val"]
    dims = [d if isinstance(d, int) else None for d in value.shape[1:]]
    if any(d is None for d in dims):
        raise FormatError(
            f"the program's input has a free dimension besides the batch: {list(value.shape)}"
        )
    return TensorSchema.model_validate(
        {
            "shape": [d for d in dims if d is not None],
            "dtype": str(value.dtype).removeprefix("torch."),
        }
    )


def _read_artifact(path: Path) -> torch.export.ExportedProgram:
    weights: dict[str, torch.Tensor] = {}
    constants: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != _TAG:
            raise FormatError(
                f"{path} is not a program saved by mlcanary ({metadata.get('format')!r})"
            )
        program = sanitize_program(metadata["program"])
        parameters = parameter_names(program)
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            kind, _, name = key.partition("/")
            # A copy: safetensors' tensors are only 8-byte aligned, and the CPU kernels then
            # chosen give results that differ from the network's in the last bit.
            tensor = handle.get_tensor(key).clone()
            if kind == "weights":
                weights[name] = (
                    torch.nn.Parameter(tensor, requires_grad=False)
                    if name in parameters
                    else tensor
                )
            elif kind == "constants":
                constants[name] = tensor
            else:
                raise FormatError(f"{path}: unexpected tensor {key!r}")
    return deserialize_program(program, weights, constants)


class TorchExportFormat:
    name = "torch-export"
    framework = "torch"

    def accepts(self, model: Any) -> bool:
        return is_torch_model(model)

    def describe(self, model: Any, example: Batch | None) -> Described:
        if isinstance(model, torch.export.ExportedProgram):
            schema = _input_schema(model)
            # A program knows its input: with no example, zeros of that shape show its output.
            probe = example if example is not None else np.zeros((2, *schema.shape), schema.dtype)
            described = describe_network(model.module(), probe)
            return Described(
                classes=described.classes,
                probabilities=described.probabilities,
                outputs=described.outputs,
                schema=schema,
                float_dtype=schema.dtype if schema.dtype.startswith("float") else None,
            )
        return describe_network(model, example)

    def read(self, path: Path, context: ReadContext) -> torch.export.ExportedProgram:
        from mlcanary.models.formats.torch_pt2 import read_pt2

        try:
            return read_pt2(path)
        except UnsafeProgramError as exc:
            raise FormatError(f"{path} is refused: {exc}") from None

    def save(self, model: Any, directory: Path, context: SaveContext) -> SavedArtifact:
        from torch._export.serde.serialize import serialize

        program = _program(model, context.example)
        for spec in program.graph_signature.input_specs:
            if spec.kind == torch.export.graph_signature.InputKind.CUSTOM_OBJ:
                raise FormatError(f"{spec.target}: a ScriptObject constant cannot be stored safely")
        tensors = {f"weights/{k}": _plain(k, v) for k, v in program.state_dict.items()}
        tensors |= {f"constants/{k}": _plain(k, v) for k, v in program.constants.items()}
        serialized = serialize(
            program,
            serialize_state_dict=False,
            serialize_constants=False,
            serialize_example_inputs=False,
        )
        try:  # refused now rather than at the first load
            checked = sanitize_program(serialized.exported_program)
        except UnsafeProgramError as exc:
            raise FormatError(f"the exported program is refused: {exc}") from None
        path = directory / ARTIFACT_NAME
        save_file(tensors, str(path), metadata={"format": _TAG, "program": checked.decode()})
        return SavedArtifact(path)

    def load(self, path: Path, options: Mapping[str, Any], context: LoadContext) -> TorchRunner:
        from torch.export.passes import move_to_device_pass

        from mlcanary.gpu.device import select_torch_device

        try:
            program = _read_artifact(path)
        except UnsafeProgramError as exc:
            raise FormatError(f"{path} is refused: {exc}") from None
        device = select_torch_device(context.device)
        if device != "cpu":
            program = move_to_device_pass(program, device)
        network = program.module()
        # The version's schema has checked every input's shape and dtype already; the module's
        # own check is a Python hook on every call.
        network.validate_inputs = False  # type: ignore[assignment]
        dtype = network_dtype(network)
        return TorchRunner.for_output(network, dtype, device, context.output)


FORMAT = TorchExportFormat()
