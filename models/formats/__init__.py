"""Artifact formats, one module per format, named in `FORMATS`.

Only formats that run no code from the file when read: skops (scikit-learn, a type allowlist),
ONNX (a graph, run by onnxruntime), ``torch.export`` programs in mlcanary's own pickle-free
artifact, and a safetensors ``state_dict`` with the user's own module class. A format's module is
imported when a version uses it (serving a scikit-learn version imports no torch). Adding a
format: one module defining ``FORMAT`` (an `ArtifactFormat`), one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcanary.models.formats.base import ArtifactFormat, FormatError

__all__ = ["FORMATS", "FormatEntry", "format_for_file", "format_for_model", "format_named"]


@dataclass(frozen=True)
class FormatEntry:
    module: str  # defines FORMAT
    suffix: str  # of the files ``mlcanary models import`` reads in this format


FORMATS: dict[str, FormatEntry] = {
    "skops": FormatEntry("mlcanary.models.formats.skops", ".skops"),
    "onnx": FormatEntry("mlcanary.models.formats.onnx", ".onnx"),
    "torch-export": FormatEntry("mlcanary.models.formats.torch_export", ".pt2"),
    "safetensors": FormatEntry("mlcanary.models.formats.torch_safetensors", ".safetensors"),
}
# The format an in-memory model gets by default, by the library its class comes from.
_BY_LIBRARY = {"sklearn": "skops", "onnx": "onnx", "torch": "torch-export"}


def format_named(name: str) -> ArtifactFormat:
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    artifact_format: ArtifactFormat = importlib.import_module(FORMATS[name].module).FORMAT
    return artifact_format


def format_for_model(model: Any) -> ArtifactFormat:
    """The default format of an in-memory model, from the library of its class or a base."""
    libraries = {cls.__module__.split(".")[0] for cls in type(model).__mro__}
    for library, name in _BY_LIBRARY.items():
        if library in libraries and format_named(name).accepts(model):
            return format_named(name)
    raise FormatError(
        f"a {type(model).__qualname__} is not a scikit-learn estimator, a torch.nn.Module, a "
        "torch.export program or an ONNX model"
    )


def format_for_file(path: Path) -> ArtifactFormat:
    for name, entry in FORMATS.items():
        if path.suffix == entry.suffix:
            return format_named(name)
    suffixes = ", ".join(entry.suffix for entry in FORMATS.values())
    raise FormatError(f"{path.name}: an artifact ends with one of {suffixes}; give --format")
