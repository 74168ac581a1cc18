"""The ModelRollout spec: one schema for the local YAML file and the Kubernetes custom resource.

Why one schema: the local mode and the operator must never disagree on what a rollout means, and
the CRD's OpenAPI schema can be generated from these models (`ModelRollout.model_json_schema()`;
durations are declared as strings for that reason). Unknown fields are rejected everywhere except
in ``metadata``, which Kubernetes owns and fills with fields of its own (uid, resourceVersion...):
a misspelt threshold silently ignored would leave a rollout unguarded.

What the thresholds mean (`mlcanary.rollout.sequential` has the tests): ``alpha`` bounds the
probability of rolling back a canary that is fine, over the whole rollout; ``beta`` the
probability of promoting one that regressed. For accuracy, where labels are scarce, "fine" means
as accurate as stable and "regressed" means worse by ``maxDrop`` or more; drops in between are an
indifference zone that either decision may take (the larger the drop, the likelier a rollback),
which is what lets the test decide with few labels: set maxDrop to the smallest drop that must
not reach all traffic. For latency, where requests are plentiful, ``maxRatio`` is a plain bound:
a canary whose quantile is within maxRatio times stable's is fine, one beyond it regressed.
``errorRate.max`` and ``latency.maxMs`` are absolute bounds on the canary alone. A canary close to
a plain bound takes long to resolve, and the step's deadline (``maxDuration``) rolls it back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlcanary.names import NAME_PATTERN, OBJECT_NAME_PATTERN
from mlcanary.rollout.metrics.registry import PROVIDERS
from mlcanary.rollout.notifications.spec import MAX_TARGETS, NotificationTarget
from mlcanary.rollout.observations import CamelModel
from mlcanary.rollout.routers.registry import ROUTERS
from mlcanary.rollout.status import RolloutStatus

__all__ = [
    "API_VERSION",
    "KIND",
    "AccuracyCheck",
    "AnalysisSpec",
    "ErrorCheck",
    "ErrorRateCheck",
    "LatencyCheck",
    "Metadata",
    "MetricsSpec",
    "ModelRollout",
    "RolloutSpec",
    "RouterSpec",
    "SpecError",
    "VersionRef",
    "format_duration",
    "load_spec",
    "load_spec_file",
    "parse_spec",
]

API_VERSION = "mlcanary.dev/v1alpha1"
KIND = "ModelRollout"

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_OBJECT_NAME = OBJECT_NAME_PATTERN


def _parse_duration(value: object) -> object:
    """Durations are strings with a unit ("30s", "15m", "1h30m"), like Kubernetes and Go.

    A bare number is refused: 30 could mean seconds or minutes, and guessing wrong by a factor of
    60 changes what a deadline means.
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise PydanticCustomError(
            "duration", f"expected a duration such as '30s', '15m' or '1h30m', got {value!r}"
        )
    return sum(
        (float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(value)),
        timedelta(),
    )


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta():
        raise PydanticCustomError("duration", "must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The canonical spelling, so that equal durations hash alike: 90s is written 1m30s."""
    milliseconds = round(value.total_seconds() * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": f"^{_DURATION.pattern}$"}),
]
Name = Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")]
Percent = Annotated[int, Field(strict=True, gt=0, le=100)]


def _known(registry: Mapping[str, object], what: str) -> Callable[[str], str]:
    """A validator for a string that must name an entry of a registry."""

    def check(value: str) -> str:
        if value not in registry:
            raise PydanticCustomError(
                "unknown_name", f"unknown {what} {value!r}; known: {', '.join(registry)}"
            )
        return value

    return check


# Their JSON schemas are the registries' names, so the CRD lists exactly the names the code knows.
RouterType = Annotated[
    str,
    AfterValidator(_known(ROUTERS, "router")),
    WithJsonSchema({"type": "string", "enum": list(ROUTERS)}),
]
ProviderName = Annotated[
    str,
    AfterValidator(_known(PROVIDERS, "metrics provider")),
    WithJsonSchema({"type": "string", "enum": list(PROVIDERS)}),
]


class Metadata(CamelModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=_OBJECT_NAME, max_length=253)
    namespace: str | None = None


class VersionRef(CamelModel):
    version: Name


class RouterSpec(CamelModel):
    type: RouterType = "local"
    # Where the local router listens (http://127.0.0.1:8080 when unset); other routers ignore it.
    address: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # The replicas router's total over both versions (10 when unset: the smallest total that
    # carries every multiple of 10% exactly); other routers ignore it.
    replicas: int | None = Field(default=None, strict=True, ge=1, le=1000)


class MetricsSpec(CamelModel):
    provider: ProviderName = "prometheus"
    address: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _address_for_prometheus(self) -> MetricsSpec:
        if self.provider == "prometheus" and self.address is None:
            raise PydanticCustomError(
                "missing_address", "the prometheus provider needs an address (http://host:port)"
            )
        return self


class AccuracyCheck(CamelModel):
    max_drop: float = Field(default=0.02, gt=0, lt=1)


class ErrorCheck(CamelModel):
    """A regressor's error from its labels, canary against stable: the canary regressed when its
    MAE (or RMSE) is ``maxIncrease`` or more above stable's, relatively (0.05: 5% higher)."""

    metric: Literal["mae", "rmse"] = "mae"
    max_increase: float = Field(default=0.05, gt=0, le=10)


class LatencyCheck(CamelModel):
    quantile: float = Field(default=0.95, ge=0.5, lt=1)
    max_ratio: float = Field(default=1.25, gt=1)
    max_ms: float | None = Field(default=None, gt=0)


class ErrorRateCheck(CamelModel):
    max: float = Field(default=0.01, gt=0, lt=1)


class AnalysisSpec(CamelModel):
    interval: Duration = timedelta(seconds=30)
    min_samples: int = Field(default=200, strict=True, ge=1)
    max_duration: Duration = timedelta(minutes=15)
    alpha: float = Field(default=0.01, gt=0, le=0.25)
    beta: float = Field(default=0.01, gt=0, le=0.25)
    # A check set to null is not analysed (a model without ground-truth feedback has no accuracy).
    # A classifier is judged on accuracy, a regressor on error: setting error turns accuracy off
    # unless it is set too, which is refused.
    accuracy: AccuracyCheck | None = Field(default_factory=AccuracyCheck)
    error: ErrorCheck | None = None
    latency: LatencyCheck | None = Field(default_factory=LatencyCheck)
    error_rate: ErrorRateCheck | None = Field(default_factory=ErrorRateCheck)

    @field_validator("max_duration")
    @classmethod
    def _longer_than_interval(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        interval = info.data.get("interval")
        if interval is not None and value < interval:
            raise PydanticCustomError(
                "too_short", f"must be at least the interval ({format_duration(interval)})"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _error_replaces_accuracy(cls, data: object) -> object:
        """A spec that sets error judges a regressor: the default accuracy check does not apply."""
        if isinstance(data, dict) and data.get("error") is not None and "accuracy" not in data:
            return {**data, "accuracy": None}
        return data

    @model_validator(mode="after")
    def _one_quality_check(self) -> AnalysisSpec:
        if self.error is not None and self.accuracy is not None:
            raise PydanticCustomError(
                "two_quality_checks",
                "accuracy judges a classifier and error a regressor: set one of them",
            )
        if (self.accuracy, self.error, self.latency, self.error_rate) == (None,) * 4:
            raise PydanticCustomError(
                "no_checks",
                "accuracy, error, latency and errorRate are all null: nothing to analyse",
            )
        return self


class RolloutSpec(CamelModel):
    model: Name
    stable: VersionRef
    canary: VersionRef
    router: RouterSpec = RouterSpec()
    metrics: MetricsSpec
    steps: list[Percent] = Field(default_factory=lambda: [10, 100], min_length=2)
    analysis: AnalysisSpec = AnalysisSpec()
    notifications: list[NotificationTarget] = Field(default_factory=list, max_length=MAX_TARGETS)

    @field_validator("canary")
    @classmethod
    def _new_version(cls, value: VersionRef, info: ValidationInfo) -> VersionRef:
        stable = info.data.get("stable")
        if stable is not None and stable.version == value.version:
            raise PydanticCustomError(
                "same_version", f"version {value.version!r} is also the stable version"
            )
        return value

    @field_validator("steps")
    @classmethod
    def _increasing_to_all(cls, value: list[int]) -> list[int]:
        """At least two steps: at 100% stable serves nothing, so the canary must first be compared
        with stable side by side at a lower weight."""
        if any(later <= earlier for earlier, later in pairwise(value)):
            raise PydanticCustomError("steps_order", f"must be strictly increasing, got {value}")
        if value[-1] != 100:
            raise PydanticCustomError("steps_end", f"must end at 100, got {value}")
        return value


class ModelRollout(CamelModel):
    api_version: Literal["mlcanary.dev/v1alpha1"]
    kind: Literal["ModelRollout"]
    metadata: Metadata
    spec: RolloutSpec
    status: RolloutStatus | None = None  # present on a custom resource read back from Kubernetes

    def spec_hash(self) -> str:
        """SHA-256 of the spec's canonical JSON (defaults filled in, keys sorted, durations in one
        spelling): equal specs hash alike however they were written; metadata and status don't
        count."""
        canonical = json.dumps(
            self.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class SpecError(ValueError):
    """An invalid spec, with one "field.path: problem" line per problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for path, problem in problems))


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path or "(document)"


def parse_spec(document: object) -> ModelRollout:
    """A ModelRollout from a document already parsed (a watched object, a loaded YAML mapping),
    raising `SpecError` for any problem."""
    if not isinstance(document, dict):
        raise SpecError(
            [("(document)", "expected a mapping with apiVersion, kind, metadata, spec")]
        )
    try:
        return ModelRollout.model_validate(document, by_alias=True, by_name=False)
    except ValidationError as error:
        raise SpecError(
            [(_path(problem["loc"]), problem["msg"]) for problem in error.errors()]
        ) from None


MAX_SPEC_BYTES = 1 << 20  # a ModelRollout is a few hundred bytes; a megabyte is no spec
MAX_DEPTH = 32  # the spec nests 4 levels; its CRD form a few more


def _yaml_error(error: yaml.YAMLError) -> SpecError:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark is not None else "(document)"
    problem = str(getattr(error, "problem", None) or error).splitlines()[0]
    return SpecError([(where, f"not valid YAML: {problem}")])


def _check_shape(text: str) -> None:
    """Refuse, from the YAML's events alone and before anything is built, what a spec never
    has: aliases (the billion-laughs bombs are made of them: a few lines that expand into
    gigabytes) and nesting deeper than any spec needs (PyYAML's composer recurses once a level,
    and a few thousand levels end in a RecursionError)."""
    depth = 0

    def line(event: yaml.Event) -> str:
        mark = event.start_mark
        return f"line {mark.line + 1}" if mark is not None else "(document)"

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                problem = "YAML aliases (*name) are not accepted in a spec"
                raise SpecError([(line(event), problem)])
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError([(line(event), f"nested deeper than {MAX_DEPTH} levels")])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError as error:
        raise _yaml_error(error) from None


def load_spec(text: str) -> ModelRollout:
    """Parse a ModelRollout YAML document, raising `SpecError` for any problem."""
    _check_shape(text)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(error) from None
    return parse_spec(document)


def load_spec_file(path: Path) -> ModelRollout:
    """The ModelRollout in a file; a file that cannot be read, is too large or is not UTF-8
    text is a `SpecError` too."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise SpecError([("(file)", f"cannot read it: {error.strerror or error}")]) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([("(file)", f"larger than {MAX_SPEC_BYTES} bytes: not a ModelRollout")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        raise SpecError([("(file)", problem)]) from None
    return load_spec(text)
