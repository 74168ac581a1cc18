"""Model versions in the BentoML model store: store, list, delete, and load with integrity checks.

BentoML's store gives versioned directories, a tag per version (``churn:v7``) and metadata that
``bentoml models list`` shows too. The artifact inside each directory is written by one of the
safe formats (`mlcanary.models.formats`), and its SHA-256 is part of the metadata, checked on
every load before any byte reaches a deserializer. The metadata also holds what serving needs to
know of the version without loading it: its format, input schema, task and classes, and its
holdout score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from mlcanary.models.digest import file_sha256, verify_sha256
from mlcanary.models.formats import format_named
from mlcanary.models.formats.base import LoadContext, Runner, SavedArtifact
from mlcanary.models.schema import Batch, ColumnsSchema, InputSchema, TensorSchema
from mlcanary.models.task import (
    ClassificationOutput,
    OutputSpec,
    Predictions,
    RegressionOutput,
    Task,
)
from mlcanary.names import NAME

__all__ = [
    "ModelRef",
    "ModelVersion",
    "Predictor",
    "VersionExistsError",
    "VersionNotFoundError",
    "create_version",
    "delete_version",
    "get_version",
    "list_versions",
    "load_predictor",
]

_LABEL_APP = "mlcanary"
_SCHEMA: TypeAdapter[TensorSchema | ColumnsSchema] = TypeAdapter(InputSchema)
_OUTPUT: TypeAdapter[ClassificationOutput | RegressionOutput] = TypeAdapter(OutputSpec)


class VersionNotFoundError(LookupError):
    """The model store has no such model version."""


class VersionExistsError(ValueError):
    """The version is already registered; versions are immutable, register a new one."""


@dataclass(frozen=True)
class ModelRef:
    """A ``name:version`` reference, validated so it is safe in labels, paths and PromQL."""

    name: str
    version: str

    def __post_init__(self) -> None:
        for field, value in (("name", self.name), ("version", self.version)):
            if not NAME.fullmatch(value):
                raise ValueError(
                    f"model {field} {value!r} must be lowercase letters, digits, '.', '_' or '-' "
                    "(at most 63, starting with a letter or digit)"
                )

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, sep, version = text.partition(":")
        if not sep:
            raise ValueError(f"model reference {text!r} must look like NAME:VERSION")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class ModelVersion:
    ref: ModelRef
    format: str
    framework: str
    schema: TensorSchema | ColumnsSchema
    output: ClassificationOutput | RegressionOutput
    holdout: Mapping[str, float]  # accuracy, or mae and rmse; empty without holdout data
    digest: str
    artifact: Path
    size_bytes: int
    role: str
    description: str
    created: datetime
    load_options: Mapping[str, Any]

    @property
    def task(self) -> Task:
        return Task(self.output.task)

    def summary(self) -> dict[str, Any]:
        """What ``mlcanary models list|show --json`` prints."""
        return {
            "model": self.ref.name,
            "version": self.ref.version,
            "format": self.format,
            "framework": self.framework,
            "task": self.task.value,
            "schema": self.schema.model_dump(mode="json", exclude_none=True),
            "output": self.output.model_dump(mode="json", exclude_none=True),
            "holdout": dict(self.holdout),
            "role": self.role,
            "description": self.description,
            "size_bytes": self.size_bytes,
            "sha256": self.digest,
            "created": self.created.isoformat(),
            "load_options": dict(self.load_options),
        }


class Predictor:
    """A loaded version: batches shaped by its schema in, its task's predictions out."""

    def __init__(self, version: ModelVersion, runner: Runner) -> None:
        self.version = version
        self._runner = runner
        self._interpret = version.output.interpret

    @property
    def device(self) -> str:
        return self._runner.device

    def predict(self, batch: Batch) -> Predictions:
        return self._interpret(self._runner.run(batch))


def _from_store(stored: Any) -> ModelVersion:
    meta: dict[str, Any] = dict(stored.info.metadata)
    if "schema" not in meta:
        raise VersionNotFoundError(
            f"model {stored.tag} was registered by an earlier mlcanary without an input schema; "
            "register it again"
        )
    artifact = Path(stored.path) / str(meta["artifact"])
    return ModelVersion(
        ref=ModelRef(stored.tag.name, str(stored.tag.version)),
        format=str(meta["format"]),
        framework=str(meta["framework"]),
        schema=_SCHEMA.validate_python(meta["schema"]),
        output=_OUTPUT.validate_python(meta["output"]),
        holdout={str(k): float(v) for k, v in dict(meta.get("holdout", {})).items()},
        digest=str(meta["sha256"]),
        artifact=artifact,
        size_bytes=artifact.stat().st_size if artifact.exists() else 0,
        role=str(meta.get("role", "")),
        description=str(meta.get("description", "")),
        created=stored.creation_time,
        load_options=dict(meta.get("load_options", {})),
    )


def _stored(ref: ModelRef) -> Any:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        stored = bentoml.models.get(str(ref))
    except NotFound:
        raise VersionNotFoundError(
            f"model version {ref} is not in the model store; see `mlcanary models list`"
        ) from None
    if stored.info.labels.get("app") != _LABEL_APP:
        raise VersionNotFoundError(f"model {ref} in the store was not registered by mlcanary")
    return stored


def get_version(ref: ModelRef) -> ModelVersion:
    return _from_store(_stored(ref))


def list_versions(name: str | None = None) -> list[ModelVersion]:
    import bentoml

    versions = []
    for stored in bentoml.models.list(name):
        if stored.info.labels.get("app") != _LABEL_APP:
            continue
        try:
            versions.append(_from_store(stored))
        except VersionNotFoundError:
            continue  # an earlier registration; `models show` says why
    return sorted(versions, key=lambda v: (v.ref.name, v.ref.version))


def delete_version(ref: ModelRef) -> None:
    import bentoml

    _stored(ref)
    bentoml.models.delete(str(ref))


def _predictor(version: ModelVersion, device: str) -> Predictor:
    artifact_format = format_named(version.format)
    runner = artifact_format.load(
        version.artifact, version.load_options, LoadContext(version.schema, version.output, device)
    )
    return Predictor(version, runner)


def create_version(
    ref: ModelRef,
    format_name: str,
    write: Callable[[Path], SavedArtifact],
    *,
    schema: TensorSchema | ColumnsSchema,
    output: ClassificationOutput | RegressionOutput,
    score: Callable[[Predictor], Mapping[str, float]],
    role: str = "",
    description: str = "",
) -> ModelVersion:
    """Write a version's artifact into a new store entry, load it back the way serving will, and
    score it; the entry is kept only if all of that succeeds."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(str(ref))
    except NotFound:
        pass
    else:
        raise VersionExistsError(f"{ref} is already registered; register a new version")
    artifact_format = format_named(format_name)
    labels = {"app": _LABEL_APP, "framework": artifact_format.framework}
    with bentoml.models.create(bentoml.Tag(ref.name, ref.version), labels=labels) as stored:
        saved = write(Path(stored.path))
        metadata: dict[str, Any] = {
            "format": format_name,
            "framework": artifact_format.framework,
            # BentoML's metadata takes no None: an unset field is left out.
            "schema": schema.model_dump(mode="json", exclude_none=True),
            "output": output.model_dump(mode="json", exclude_none=True),
            "artifact": saved.path.name,
            "sha256": file_sha256(saved.path),
            "role": role,
            "description": description,
            "load_options": dict(saved.load_options),
        }
        stored.info.metadata.update(metadata)
        # The version as serving will see it: loaded back from the file just written.
        provisional = _from_store(stored)
        metadata["holdout"] = dict(score(_predictor(provisional, "cpu")))
        stored.info.metadata.update(metadata)
    return get_version(ref)


def load_predictor(ref: ModelRef, device: str = "auto") -> tuple[ModelVersion, Predictor]:
    """Check the artifact's digest, then load it; a mismatch never reaches a deserializer."""
    version = get_version(ref)
    verify_sha256(version.artifact, version.digest)
    return version, _predictor(version, device)
