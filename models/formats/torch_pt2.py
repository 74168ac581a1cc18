"""Reads a ``.pt2`` archive written by ``torch.export.save`` without unpickling anything.

``torch.export.load`` reads the archive's sample inputs, pickled weights and opaque constants
with full unpickling (``torch.load(weights_only=False)``, ``pickle.loads``): a crafted archive
runs code when it is loaded. This reader takes only what it can read as data:

* the program's JSON, checked by `torch_program.sanitize_program`;
* the weights and tensor constants torch stores as raw bytes, rebuilt from their recorded
  dtype, sizes and strides, each checked to lie inside its payload;
* a tensor torch pickled (it does so for tensor subclasses) only through
  ``torch.load(weights_only=True)``, and only if it comes back a plain tensor.

The sample inputs and extra files are skipped. Every other entry (torchbind and opaque objects,
AOTInductor or ExecuTorch payloads, the pre-2.8 layout) is refused by name, so a file that would
need them is not half-loaded. The program is then re-saved in mlcanary's own pickle-free artifact.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

from mlcanary.models.formats.torch_program import (
    UnsafeProgramError,
    deserialize_program,
    sanitize_program,
)

__all__ = ["read_pt2"]

# torch._export.serde.schema.ScalarType values this reader rebuilds.
_DTYPES = {
    1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64,
    6: torch.float16, 7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16,
}  # fmt: skip
_STRIDED = 7  # schema.Layout.Strided
_MAX_ENTRY_BYTES = 8 << 30
_SAMPLE_INPUTS = "data/sample_inputs/model.pt"  # present in every archive, never read
_ALLOWED = tuple(
    re.compile(pattern)
    for pattern in (
        r"archive_format", r"archive_version", r"byteorder", r"\.data/version",
        r"\.data/serialization_id", r"models/model\.json",
        r"data/weights/model_weights_config\.json", r"data/weights/weight_[0-9]+",
        r"data/constants/model_constants_config\.json", r"data/constants/tensor_[0-9]+",
        re.escape(_SAMPLE_INPUTS), r"extra/[^/]+",
    )
)  # fmt: skip


def _ints(values: list[Any], where: str) -> list[int]:
    numbers = []
    for value in values:
        if set(value) != {"as_int"} or not isinstance(value["as_int"], int):
            raise UnsafeProgramError(f"{where}: a size that is not a constant: {value}")
        numbers.append(value["as_int"])
    return numbers


def _pickled(data: bytes, name: str) -> torch.Tensor:
    """A tensor torch pickled: through the weights-only unpickler, which rebuilds only plain
    tensors and containers, and refused unless it is one."""
    try:
        tensor = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # the weights-only unpickler raises UnpicklingError and others
        raise UnsafeProgramError(f"{name}: refused by the weights-only unpickler: {exc}") from None
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafeProgramError(f"{name}: a pickled {type(tensor).__name__}, not a tensor")
    detached: torch.Tensor = tensor.detach()
    return detached


def _raw(data: bytes, meta: dict[str, Any], name: str, storage: torch.Tensor) -> torch.Tensor:
    sizes = _ints(meta["sizes"], name)
    strides = _ints(meta["strides"], name)
    (offset,) = _ints([meta["storage_offset"]], name)
    if len(sizes) != len(strides) or min([*sizes, *strides, offset, 0]) < 0:
        raise UnsafeProgramError(f"{name}: sizes {sizes} and strides {strides} do not fit")
    elements = 1
    for size in sizes:
        elements *= size
    last = offset + sum((size - 1) * stride for size, stride in zip(sizes, strides, strict=True))
    if elements and last >= storage.numel():
        raise UnsafeProgramError(f"{name}: a view beyond its payload of {len(data)} bytes")
    if not elements:
        return torch.zeros(sizes, dtype=storage.dtype)
    return storage.as_strided(sizes, strides, offset)


def _tensors(files: dict[str, bytes], folder: str, config_name: str) -> dict[str, torch.Tensor]:
    config = json.loads(files[folder + config_name])["config"]
    storages: dict[str, torch.Tensor] = {}  # one per payload, so views keep sharing it
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in config.items():
        payload = entry["path_name"]
        if not re.fullmatch(r"(weight|tensor)_[0-9]+", payload):
            raise UnsafeProgramError(f"{name}: {folder}{payload} would need unpickling")
        meta = entry["tensor_meta"]
        if meta is None or meta["layout"] != _STRIDED or meta["dtype"] not in _DTYPES:
            raise UnsafeProgramError(f"{name}: a tensor this reader does not rebuild: {meta}")
        if meta["device"]["type"] != "cpu":
            raise UnsafeProgramError(f"{name}: saved on {meta['device']['type']}; save on the CPU")
        dtype = _DTYPES[meta["dtype"]]
        data = files[folder + payload]
        if entry["use_pickle"]:
            tensor = _pickled(data, name)
        else:
            if payload not in storages:
                size = torch.empty((), dtype=dtype).element_size()
                if len(data) % size:
                    raise UnsafeProgramError(f"{name}: {len(data)} bytes of {dtype}")
                # A writable copy (frombuffer warns on bytes), owned and aligned.
                storages[payload] = torch.frombuffer(bytearray(data), dtype=dtype).clone()
            tensor = _raw(data, meta, name, storages[payload])
        if list(tensor.shape) != _ints(meta["sizes"], name) or tensor.dtype != dtype:
            raise UnsafeProgramError(f"{name}: the payload does not match its recorded shape")
        tensors[name] = (
            torch.nn.Parameter(tensor, requires_grad=False) if entry["is_param"] else tensor
        )
    return tensors


def _entries(path: Path) -> dict[str, bytes]:
    """The archive's entries this reader takes, by their name inside its top-level folder."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnsafeProgramError(f"{path} is not a .pt2 archive: {exc}") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        roots = {info.filename.split("/", 1)[0] for info in infos}
        if len(roots) != 1:
            raise UnsafeProgramError(
                f"{path}: expected one top-level folder, found {sorted(roots)[:5]}"
            )
        prefix = f"{roots.pop()}/"
        files = {}
        for info in infos:
            name = info.filename.removeprefix(prefix)
            if not any(pattern.fullmatch(name) for pattern in _ALLOWED):
                raise UnsafeProgramError(
                    f"{path}: entry {name!r} is not read (it would need unpickling or native code)"
                )
            if info.file_size > _MAX_ENTRY_BYTES:
                raise UnsafeProgramError(f"{path}: entry {name!r} is too large")
            # The sample inputs: torch falls back to full unpickling for them.
            if name != _SAMPLE_INPUTS and not name.startswith("extra/"):
                files[name] = archive.read(info)
    return files


def read_pt2(path: Path) -> torch.export.ExportedProgram:
    files = _entries(path)
    if files.get("archive_format") != b"pt2" or files.get("archive_version") != b"0":
        raise UnsafeProgramError(f"{path}: not a pt2 archive of torch 2.8 or later")
    if files.get("byteorder", sys.byteorder.encode()).decode() != sys.byteorder:
        raise UnsafeProgramError(f"{path}: written on a machine of another byte order")
    program = sanitize_program(files["models/model.json"])
    weights = _tensors(files, "data/weights/", "model_weights_config.json")
    constants = _tensors(files, "data/constants/", "model_constants_config.json")
    return deserialize_program(program, weights, constants)
