"""PyTorch networks as a safetensors ``state_dict`` plus the user's own module class.

Why this second torch format: a network that ``torch.export`` cannot capture (data-dependent
control flow, custom autograd) still serves, built from its class. The file holds tensors only;
the class is named by its import path (``my_pkg.nets:Net``) with its constructor's arguments,
recorded in the version's metadata. That code is the user's and is imported as code, like any
package they install: it must be importable where the version is served (installed, or on
``PYTHONPATH``), and ``mlcanary build`` copies it into the image.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

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
    is_torch_model,
    network_dtype,
)
from mlcanary.models.schema import Batch

__all__ = ["FORMAT", "SafetensorsFormat", "architecture_of", "build_network"]

ARTIFACT_NAME = "model.safetensors"


def architecture_of(module: torch.nn.Module) -> str:
    """The import path of a network's class, if it can be imported again elsewhere."""
    cls = type(module)
    if cls.__module__ in ("__main__", "builtins") or "<locals>" in cls.__qualname__:
        raise FormatError(
            f"the class {cls.__qualname__} is defined in a script or a function; move it into an "
            "importable module, or give architecture='package.module:Class'"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def build_network(architecture: str, config: Mapping[str, Any]) -> torch.nn.Module:
    """The user's class, imported by its path and constructed with its recorded arguments."""
    module_name, _, qualname = architecture.partition(":")
    if not module_name or not qualname:
        raise FormatError(f"architecture {architecture!r} must look like package.module:Class")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FormatError(
            f"cannot import {module_name!r} for architecture {architecture}: {exc}; install the "
            "package or put it on PYTHONPATH where the version is served"
        ) from None
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if not (isinstance(target, type) and issubclass(target, torch.nn.Module)):
        raise FormatError(f"architecture {architecture} is not a torch.nn.Module class")
    try:
        return target(**config)
    except TypeError as exc:
        raise FormatError(f"{architecture}(**{json.dumps(dict(config))}) failed: {exc}") from None


def _load(path: Path, options: Mapping[str, Any]) -> torch.nn.Module:
    network = build_network(str(options["architecture"]), options.get("config", {}))
    try:
        network.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except RuntimeError as exc:
        raise FormatError(
            f"the weights in {path} do not fit {options['architecture']}: {exc}"
        ) from None
    return network.eval()


class SafetensorsFormat:
    name = "safetensors"
    framework = "torch"

    def accepts(self, model: Any) -> bool:
        return is_torch_model(model) and isinstance(model, torch.nn.Module)

    def describe(self, model: Any, example: Batch | None) -> Described:
        return describe_network(model, example)

    def _options(self, model: torch.nn.Module | None, context: ReadContext) -> dict[str, Any]:
        architecture = context.architecture or (architecture_of(model) if model else None)
        if architecture is None:
            raise FormatError(
                "a safetensors state_dict needs its class: --architecture pkg.mod:Class"
            )
        try:
            config = json.loads(json.dumps(dict(context.config)))
        except TypeError as exc:
            raise FormatError(f"the architecture's config must be JSON: {exc}") from None
        return {"architecture": architecture, "config": config}

    def read(self, path: Path, context: ReadContext) -> torch.nn.Module:
        return _load(path, self._options(None, context))

    def save(self, model: Any, directory: Path, context: SaveContext) -> SavedArtifact:
        options = self._options(model, context)
        rebuilt = build_network(options["architecture"], options["config"])
        if type(rebuilt) is not type(model):
            built, given = type(rebuilt).__name__, type(model).__name__
            raise FormatError(f"{options['architecture']} builds a {built}, not a {given}")
        path = directory / ARTIFACT_NAME
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(path))
        return SavedArtifact(path, options)

    def load(self, path: Path, options: Mapping[str, Any], context: LoadContext) -> TorchRunner:
        from mlcanary.gpu.device import select_torch_device

        device = select_torch_device(context.device)
        network = _load(path, options).to(device)
        return TorchRunner.for_output(network, network_dtype(network), device, context.output)


FORMAT = SafetensorsFormat()
