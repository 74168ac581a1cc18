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
    PlainValidator,
    TypeAdapter,
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
from mlcanary.rollout.templates import template_problem

__all__ = [
    "API_VERSION",
    "KIND",
    "SHADOW",
    "AccuracyCheck",
    "AnalysisSpec",
    "ErrorCheck",
    "ErrorRateCheck",
    "Gate",
    "LatencyCheck",
    "Metadata",
    "MetricCheck",
    "MetricComparison",
    "MetricRange",
    "MetricsSpec",
    "ModelRollout",
    "PromotionSpec",
    "RolloutSpec",
    "RouterSpec",
    "ShadowCheck",
    "SpecError",
    "Step",
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
# The names of the built-in checks, which a user's own check may not take.
BUILTIN_CHECKS = frozenset({"accuracy", "error", "latency", "latency-max", "error-rate"})
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
SHADOW = "shadow"
_PERCENT: TypeAdapter[int] = TypeAdapter(Percent)


def _step(value: object) -> int | str:
    if isinstance(value, str):
        if value == SHADOW:
            return value
        raise PydanticCustomError(
            "step",
            "a step is a canary percentage (1 to 100) or 'shadow', not {value}",
            {"value": repr(value)},
        )
    return _PERCENT.validate_python(value)


def _ten_then_all() -> list[int | str]:
    return [10, 100]


# A canary percentage, or "shadow": every client gets stable's answer while the canary answers
# copies. The CRD carries it as Kubernetes' int-or-string, bounded like the percentage (minimum
# and maximum apply to numbers only, pattern to strings only).
Step = Annotated[
    int | str,
    PlainValidator(_step),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 1,
            "maximum": 100,
            "pattern": f"^{SHADOW}$",
        }
    ),
]


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


class MetricComparison(CamelModel):
    """The canary's value against stable's at the same tick; at least one bound."""

    max_ratio: float | None = Field(default=None, gt=0)  # canary <= maxRatio x stable
    min_ratio: float | None = Field(default=None, gt=0)  # canary >= minRatio x stable
    max_increase: float | None = Field(default=None, ge=0)  # canary <= stable + maxIncrease
    max_decrease: float | None = Field(default=None, ge=0)  # canary >= stable - maxDecrease

    @model_validator(mode="after")
    def _some_bound(self) -> MetricComparison:
        if (self.max_ratio, self.min_ratio, self.max_increase, self.max_decrease) == (None,) * 4:
            raise PydanticCustomError(
                "no_bound", "set maxRatio, minRatio, maxIncrease or maxDecrease"
            )
        return self


class MetricRange(CamelModel):
    """The canary's value alone, inside [min, max]; at least one end."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_end(self) -> MetricRange:
        if self.min is None and self.max is None:
            raise PydanticCustomError("no_bound", "set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("empty_range", f"min {self.min} is above max {self.max}")
        return self


def _query_template(value: str) -> str:
    problem = template_problem(value)
    if problem is not None:
        raise PydanticCustomError("template", problem)
    return value


class MetricCheck(CamelModel):
    """A check of the user's own on a PromQL query that returns a value per version (a business
    metric, the share of low-confidence predictions, memory per request).

    Values have no counts behind them, so no sequential test applies: the check fails after
    ``failureLimit`` consecutive evaluations out of bounds and passes after ``minEvaluations``
    consecutive evaluations within them. A query that returns nothing, NaN or an error is
    neither, and resets the passes."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
    query: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_query_template)]
    compare: MetricComparison | None = None
    range: MetricRange | None = None
    failure_limit: int = Field(default=3, strict=True, ge=1, le=100)
    min_evaluations: int = Field(default=3, strict=True, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_rule(self) -> MetricCheck:
        if (self.compare is None) == (self.range is None):
            raise PydanticCustomError(
                "one_rule", "set compare (canary against stable) or range (canary alone)"
            )
        return self


class ShadowCheck(CamelModel):
    """How a shadow step judges the canary's answers against stable's on the same requests.

    ``fraction`` of the requests stable answers is copied to the canary, whose answer is compared
    and discarded. A classifier's canary must agree with stable on at least ``minAgreement`` of
    the rows; a regressor's must differ from stable by at most ``maxMeanDifference`` on average
    (the mean absolute difference of their predictions, in the target's units). Either is a
    plain bound, tested sequentially with the rollout's alpha and beta
    (`mlcanary.rollout.shadow`).
    """

    fraction: float = Field(default=1.0, gt=0, le=1)
    min_agreement: float | None = Field(default=None, gt=0, lt=1)
    max_mean_difference: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> ShadowCheck:
        if (self.min_agreement is None) == (self.max_mean_difference is None):
            raise PydanticCustomError(
                "one_bound",
                "set minAgreement (a classifier) or maxMeanDifference (a regressor), not both",
            )
        return self


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
    # What a shadow step (steps starting with shadow) judges; only with such a step.
    shadow: ShadowCheck | None = None
    # The user's own checks on PromQL queries (the prometheus provider runs them).
    metrics: list[MetricCheck] = Field(default_factory=list, max_length=20)
    # What a step still inconclusive at maxDuration does: roll back, or pause for a person.
    inconclusive: Literal["rollback", "pause"] = "rollback"
    # How long ground-truth labels take to come back: a label-based check (accuracy, error)
    # concludes only once its step has run that long, so that the first, fastest labels never
    # decide alone.
    label_delay: Duration | None = None

    @field_validator("metrics")
    @classmethod
    def _distinct_names(cls, value: list[MetricCheck]) -> list[MetricCheck]:
        names = [check.name for check in value]
        taken = sorted({n for n in names if names.count(n) > 1 or n in BUILTIN_CHECKS})
        if taken:
            raise PydanticCustomError(
                "duplicate_name", f"check name {taken[0]!r} is used twice or is a built-in check"
            )
        return value

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
        if (self.accuracy, self.error, self.latency, self.error_rate) == (None,) * 4 and not (
            self.metrics
        ):
            raise PydanticCustomError(
                "no_checks",
                "accuracy, error, latency and errorRate are all null and there are no metrics: "
                "nothing to analyse",
            )
        return self


class PromotionSpec(CamelModel):
    # After 100%, the old stable stays deployed at weight 0 for this long while every check
    # goes on; a regression meanwhile sends all traffic back to it.
    bake: Duration | None = None


class Gate(CamelModel):
    """An HTTP check that must answer 2xx before the rollout moves on, as Flagger's
    confirm-traffic-increase and confirm-promotion webhooks: a failing gate holds, it never
    rolls back."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
    url: str = Field(pattern=r"^https?://\S+$", max_length=2048)
    before: Literal["advance", "promote"] = "promote"
    timeout: Duration = timedelta(seconds=5)


class RolloutSpec(CamelModel):
    model: Name
    stable: VersionRef
    canary: VersionRef
    router: RouterSpec = RouterSpec()
    metrics: MetricsSpec
    steps: list[Step] = Field(default_factory=_ten_then_all, min_length=2)
    analysis: AnalysisSpec = AnalysisSpec()
    promotion: PromotionSpec = PromotionSpec()
    gates: list[Gate] = Field(default_factory=list, max_length=10)
    notifications: list[NotificationTarget] = Field(default_factory=list, max_length=MAX_TARGETS)

    @field_validator("gates")
    @classmethod
    def _distinct_gates(cls, value: list[Gate]) -> list[Gate]:
        names = [gate.name for gate in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PydanticCustomError("duplicate_name", f"gate name {twice[0]!r} is used twice")
        return value

    @model_validator(mode="after")
    def _queries_need_prometheus(self) -> RolloutSpec:
        if self.analysis.metrics and self.metrics.provider != "prometheus":
            raise PydanticCustomError(
                "needs_prometheus",
                "analysis.metrics are PromQL queries: they need metrics.provider prometheus",
            )
        return self

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
    def _increasing_to_all(cls, value: list[int | str]) -> list[int | str]:
        """At least two steps: at 100% stable serves nothing, so the canary must first be compared
        with stable side by side at a lower weight, or on copies in a shadow step."""
        if SHADOW in value[1:]:
            raise PydanticCustomError("steps_shadow", f"only the first step may be shadow: {value}")
        weighted = [step for step in value if isinstance(step, int)]
        if any(later <= earlier for earlier, later in pairwise(weighted)):
            raise PydanticCustomError("steps_order", f"must be strictly increasing, got {value}")
        if value[-1] != 100:
            raise PydanticCustomError("steps_end", f"must end at 100, got {value}")
        return value

    @model_validator(mode="after")
    def _shadow_step_has_its_check(self) -> RolloutSpec:
        if self.steps[0] == SHADOW and self.analysis.shadow is None:
            raise PydanticCustomError(
                "shadow_check",
                "steps start with shadow: set analysis.shadow (minAgreement for a classifier, "
                "maxMeanDifference for a regressor)",
            )
        if self.steps[0] != SHADOW and self.analysis.shadow is not None:
            raise PydanticCustomError(
                "shadow_check", "analysis.shadow is set but the steps do not start with shadow"
            )
        return self

    def canary_percent(self, index: int) -> int:
        """The canary's share of client traffic at a step: none at a shadow step."""
        step = self.steps[index]
        return 0 if step == SHADOW else int(step)

    def step_label(self, index: int) -> str:
        step = self.steps[index]
        return "shadow, canary answers compared" if step == SHADOW else f"{step}% canary"


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
