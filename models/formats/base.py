"""The interface every artifact format implements, and what it is given to save and to load.

Why one module per format behind one interface: what serving, the registry and the CLI need
from a model version is the same whatever produced it (scikit-learn, PyTorch, ONNX), and each
format only has to say how its file is written, read without running code from it, and called.
A format's module is imported only when a version uses it, so a server of a scikit-learn
version never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlcanary.models.schema import Batch, ColumnsSchema, TensorSchema
from mlcanary.models.task import ClassificationOutput, RawOutput, RegressionOutput, Task

__all__ = [
    "ArtifactFormat",
    "Described",
    "FormatError",
    "LoadContext",
    "ReadContext",
    "Runner",
    "SaveContext",
    "SavedArtifact",
    "UntrustedArtifactError",
]


class FormatError(ValueError):
    """A model or file this format cannot save or load, said in terms the user can act on."""


class UntrustedArtifactError(FormatError):
    """The artifact names types outside what is trusted, so loading it could run foreign code."""


@dataclass(frozen=True)
class SavedArtifact:
    """The file written, and what the loader will need besides its bytes (recorded in the
    version's metadata)."""

    path: Path
    load_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Described:
    """What a model says about itself, where it can: what registration need not be told."""

    task: Task | None = None
    classes: tuple[Any, ...] | None = None
    probabilities: bool = False
    outputs: int | None = None  # regression: numbers per row
    schema: TensorSchema | ColumnsSchema | None = None
    # The dtype the model computes in, which a request's numbers must fit (a network's float32
    # weights turn a float64 request into float32): it replaces an example's wider float dtype.
    float_dtype: str | None = None


@dataclass(frozen=True)
class ReadContext:
    """What the user says of an artifact besides its bytes."""

    trusted: Sequence[str] = ()  # skops: types the user named with --trust
    architecture: str | None = None  # safetensors: "package.module:Class" of the user's network
    config: Mapping[str, Any] = field(default_factory=dict)  # its constructor's arguments


@dataclass(frozen=True)
class SaveContext(ReadContext):
    """What saving may need besides the model: its input and output, and an example of its
    input (rows as the model takes them)."""

    schema: TensorSchema | ColumnsSchema = field(default_factory=lambda: TensorSchema(shape=(1,)))
    output: ClassificationOutput | RegressionOutput = field(default_factory=RegressionOutput)
    example: Batch | None = None


@dataclass(frozen=True)
class LoadContext:
    schema: TensorSchema | ColumnsSchema
    output: ClassificationOutput | RegressionOutput
    device: str = "auto"  # auto, cpu, cuda or cuda:N


class Runner(Protocol):
    """A loaded model, ready to be called on batches shaped by the version's schema."""

    @property
    def device(self) -> str: ...

    def run(self, batch: Batch) -> RawOutput: ...


class ArtifactFormat(Protocol):
    name: str  # as recorded in the metadata: skops, onnx, torch-export, safetensors
    framework: str  # sklearn, onnx or torch

    def accepts(self, model: Any) -> bool:
        """Whether an in-memory model is one this format saves."""
        ...

    def describe(self, model: Any, example: Batch | None) -> Described: ...

    def read(self, path: Path, context: ReadContext) -> Any:
        """An artifact made elsewhere (``mlcanary models import``), as the in-memory model that
        `save` takes, read without running code from the file."""
        ...

    def save(self, model: Any, directory: Path, context: SaveContext) -> SavedArtifact: ...

    def load(self, path: Path, options: Mapping[str, Any], context: LoadContext) -> Runner:
        """Read the artifact (its digest already checked) without running code from it."""
        ...
