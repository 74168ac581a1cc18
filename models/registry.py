"""Model versions in the BentoML model store: register, list, and load with integrity checks.

BentoML's store gives versioned directories, a tag per version (``digits:v1``) and metadata that
`bentoml models list` shows too. The artifact inside each directory is written by one of our
safe formats, and its SHA-256 is part of the metadata, checked on every load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from mlcanary.models.digest import file_sha256, verify_sha256
from mlcanary.models.formats import format_for
from mlcanary.models.predictor import Predictor
from mlcanary.names import NAME

__all__ = [
    "ModelRef",
    "ModelVersion",
    "VersionNotFoundError",
    "delete_version",
    "get_version",
    "list_versions",
    "load_predictor",
    "register",
]

_LABEL_APP = "mlcanary"


class VersionNotFoundError(LookupError):
    """The model store has no such model version."""


@dataclass(frozen=True)
class ModelRef:
    """A ``name:version`` reference, validated so it is safe in labels, paths and PromQL."""

    name: str
    version: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, sep, version = text.partition(":")
        if not sep or not NAME.fullmatch(name) or not NAME.fullmatch(version):
            raise ValueError(
                f"model reference {text!r} must look like NAME:VERSION "
                "(lowercase letters, digits, '.', '_' or '-')"
            )
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class ModelVersion:
    ref: ModelRef
    framework: str
    holdout_accuracy: float
    input_shape: tuple[int, ...]
    digest: str
    artifact: Path
    size_bytes: int
    role: str
    description: str
    created: datetime
    load_options: dict[str, Any]


def register(
    ref: ModelRef,
    framework: str,
    model: Any,
    *,
    holdout_accuracy: float,
    input_shape: tuple[int, ...],
    role: str,
    description: str,
) -> ModelVersion:
    """Save ``model`` in its framework's safe format and record it in the model store."""
    artifact_format = format_for(framework)
    tag = bentoml.Tag(ref.name, ref.version)
    labels = {"app": _LABEL_APP, "framework": framework, "role": role.replace(" ", "-")}
    with bentoml.models.create(tag, labels=labels) as stored:
        saved = artifact_format.save(model, Path(stored.path))
        stored.info.metadata.update(
            {
                "framework": framework,
                "version": ref.version,
                "holdout_accuracy": float(holdout_accuracy),
                "input_shape": list(input_shape),
                "artifact": saved.path.name,
                "sha256": file_sha256(saved.path),
                "role": role,
                "description": description,
                "load_options": dict(saved.load_options),
            }
        )
    return get_version(ref)


def _from_store(stored: bentoml.Model) -> ModelVersion:
    meta: dict[str, Any] = dict(stored.info.metadata)
    artifact = Path(stored.path) / str(meta["artifact"])
    return ModelVersion(
        ref=ModelRef(stored.tag.name, str(stored.tag.version)),
        framework=str(meta["framework"]),
        holdout_accuracy=float(meta["holdout_accuracy"]),
        input_shape=tuple(int(d) for d in meta["input_shape"]),
        digest=str(meta["sha256"]),
        artifact=artifact,
        size_bytes=artifact.stat().st_size if artifact.exists() else 0,
        role=str(meta.get("role", "")),
        description=str(meta.get("description", "")),
        created=stored.creation_time,
        load_options=dict(meta.get("load_options", {})),
    )


def get_version(ref: ModelRef) -> ModelVersion:
    try:
        stored = bentoml.models.get(str(ref))
    except NotFound:
        raise VersionNotFoundError(
            f"model version {ref} is not in the model store; "
            "run `mlcanary models train` or `mlcanary models list`"
        ) from None
    if stored.info.labels.get("app") != _LABEL_APP:
        raise VersionNotFoundError(f"model {ref} in the store was not registered by mlcanary")
    return _from_store(stored)


def list_versions(name: str | None = None) -> list[ModelVersion]:
    versions = [
        _from_store(stored)
        for stored in bentoml.models.list(name)
        if stored.info.labels.get("app") == _LABEL_APP
    ]
    return sorted(versions, key=lambda v: (v.ref.name, v.ref.version))


def delete_version(ref: ModelRef) -> None:
    bentoml.models.delete(str(ref))


def load_predictor(ref: ModelRef, device: str = "auto") -> tuple[ModelVersion, Predictor]:
    """Check the artifact's digest, then load it; a mismatch never reaches a deserializer."""
    version = get_version(ref)
    verify_sha256(version.artifact, version.digest)
    predictor = format_for(version.framework).load(version.artifact, version.load_options, device)
    return version, predictor
