from datetime import timedelta
from typing import Any

import pytest
import yaml

from mlcanary.rollout.spec import ModelRollout, SpecError, format_duration, load_spec, parse_spec

SKETCH = """
apiVersion: mlcanary.dev/v1alpha1
kind: ModelRollout
metadata: {name: digits}
spec:
  model: digits
  stable: {version: v1}
  canary: {version: v2}
  router: {type: local}
  metrics: {provider: prometheus, address: http://127.0.0.1:9090}
  steps: [10, 100]
  analysis:
    interval: 30s
    minSamples: 200
    maxDuration: 15m
    accuracy: {maxDrop: 0.02}
    latency: {quantile: 0.95, maxRatio: 1.25}
    errorRate: {max: 0.01}
"""


DELETE = object()


def _document(**changes: object) -> dict[str, Any]:
    """The sketch as a mapping, with paths ("__" between keys) set, or removed with DELETE."""
    document: dict[str, Any] = yaml.safe_load(SKETCH)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return document


def _load(**changes: object) -> ModelRollout:
    return load_spec(yaml.safe_dump(_document(**changes)))


def test_the_design_sketch_loads_with_its_values():
    rollout = load_spec(SKETCH)
    spec = rollout.spec
    assert rollout.metadata.name == "digits"
    assert (spec.stable.version, spec.canary.version) == ("v1", "v2")
    assert spec.steps == [10, 100]
    assert spec.analysis.interval == timedelta(seconds=30)
    assert spec.analysis.max_duration == timedelta(minutes=15)
    assert spec.analysis.accuracy is not None
    assert spec.analysis.accuracy.max_drop == 0.02
    assert spec.analysis.latency is not None
    assert spec.analysis.latency.max_ms is None


def test_defaults_fill_what_is_left_out():
    spec = _load(spec__steps=DELETE, spec__analysis=DELETE, spec__router=DELETE).spec
    assert spec.steps == [10, 100]
    assert spec.router.type == "local"
    assert (spec.analysis.alpha, spec.analysis.beta) == (0.01, 0.01)
    assert spec.analysis.min_samples == 200


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"spec__analysis__foo": 1}, "spec.analysis.foo: Extra inputs are not permitted"),
        (
            {"spec__analysis__accuracy": {"max_drop": 0.02}},
            "spec.analysis.accuracy.max_drop: Extra inputs are not permitted",
        ),
        ({"spec__steps": [10, 10, 100]}, "spec.steps: must be strictly increasing"),
        ({"spec__steps": [50, 10, 100]}, "spec.steps: must be strictly increasing"),
        ({"spec__steps": [10, 50]}, "spec.steps: must end at 100"),
        ({"spec__steps": [0, 100]}, "spec.steps[0]: Input should be greater than 0"),
        ({"spec__steps": [10, 150]}, "spec.steps[1]: Input should be less than or equal to 100"),
        ({"spec__steps": [10.5, 100]}, "spec.steps[0]: Input should be a valid integer"),
        ({"spec__steps": [100]}, "spec.steps: List should have at least 2 items"),
        ({"spec__canary__version": "v1"}, "spec.canary: version 'v1' is also the stable version"),
        ({"spec__canary": DELETE}, "spec.canary: Field required"),
        ({"spec__model": "Digits"}, "spec.model: String should match pattern"),
        ({"spec__analysis__interval": 30}, "spec.analysis.interval: expected a duration"),
        ({"spec__analysis__interval": "30x"}, "spec.analysis.interval: expected a duration"),
        ({"spec__analysis__interval": "0s"}, "spec.analysis.interval: must be longer than zero"),
        (
            {"spec__analysis__maxDuration": "10s"},
            "spec.analysis.maxDuration: must be at least the interval (30s)",
        ),
        (
            {"spec__analysis__minSamples": True},
            "spec.analysis.minSamples: Input should be a valid integer",
        ),
        (
            {"spec__analysis__accuracy__maxDrop": 0},
            "spec.analysis.accuracy.maxDrop: Input should be greater than 0",
        ),
        (
            {"spec__analysis__latency__maxRatio": 1},
            "spec.analysis.latency.maxRatio: Input should be greater than 1",
        ),
        (
            {"spec__analysis__alpha": 0.5},
            "spec.analysis.alpha: Input should be less than or equal to 0.25",
        ),
        (
            {"spec__router__type": "nginx"},
            "spec.router.type: unknown router 'nginx'; known: local, gateway-api, istio, replicas",
        ),
        (
            {"spec__metrics": {"provider": "prometheus"}},
            "spec.metrics: the prometheus provider needs an address",
        ),
        (
            {"spec__metrics": {"provider": "prometheus", "address": "127.0.0.1:9090"}},
            "spec.metrics.address: String should match pattern",
        ),
        (
            {
                "spec__analysis__accuracy": None,
                "spec__analysis__latency": None,
                "spec__analysis__errorRate": None,
            },
            "spec.analysis: accuracy, error, latency and errorRate are all null",
        ),
        (
            {"spec__analysis__error": {"metric": "mape"}},
            "spec.analysis.error.metric: Input should be 'mae' or 'rmse'",
        ),
        (
            {"spec__analysis__error": {"maxIncrease": 0}},
            "spec.analysis.error.maxIncrease: Input should be greater than 0",
        ),
        (
            {"spec__analysis__error": {}, "spec__analysis__accuracy": {"maxDrop": 0.02}},
            "spec.analysis: accuracy judges a classifier and error a regressor: set one of them",
        ),
        ({"apiVersion": "mlcanary.dev/v1"}, "apiVersion: Input should be 'mlcanary.dev/v1alpha1'"),
        ({"metadata__name": "Digits_1"}, "metadata.name: String should match pattern"),
    ],
)
def test_invalid_specs_name_the_field_and_the_problem(changes, expected):
    with pytest.raises(SpecError) as raised:
        _load(**changes)
    assert any(line.startswith(expected) for line in str(raised.value).splitlines()), str(
        raised.value
    )


def test_null_switches_a_check_off_and_leaving_it_out_keeps_the_default():
    assert _load(spec__analysis__accuracy=None).spec.analysis.accuracy is None
    assert _load(spec__analysis__accuracy=DELETE).spec.analysis.accuracy is not None


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as raised:
        _load(spec__steps=[10, 50], spec__analysis__latency__quantile=2)
    paths = [path for path, _ in raised.value.problems]
    assert paths == ["spec.steps", "spec.analysis.latency.quantile"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [unclosed", "line 1: not valid YAML"),
        ("- just\n- a list\n", "(document): expected a mapping"),
        ("", "(document): expected a mapping"),
    ],
)
def test_documents_that_are_not_a_spec_mapping(text, expected):
    with pytest.raises(SpecError, match=r"^" + expected.replace("(", r"\(").replace(")", r"\)")):
        load_spec(text)


def test_kubernetes_metadata_and_status_are_accepted():
    """A custom resource read back from the API server has fields Kubernetes owns."""
    document = _document(
        metadata__uid="0f3c", metadata__labels={"app": "digits"}, metadata__namespace="ml"
    )
    document["status"] = {"phase": "Progressing", "canaryVersion": "v2", "stepIndex": 0}
    rollout = load_spec(yaml.safe_dump(document))
    assert rollout.metadata.namespace == "ml"
    assert rollout.status is not None
    assert rollout.status.canary_version == "v2"


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("30s", 30, "30s"),
        ("90s", 90, "1m30s"),
        ("1h30m", 5400, "1h30m"),
        ("1.5m", 90, "1m30s"),
        ("500ms", 0.5, "500ms"),
    ],
)
def test_durations_parse_and_serialize_in_one_spelling(text, seconds, canonical):
    spec = _load(spec__analysis__interval=text, spec__analysis__maxDuration="2h").spec
    assert spec.analysis.interval.total_seconds() == seconds
    assert format_duration(spec.analysis.interval) == canonical
    assert spec.model_dump(mode="json")["analysis"]["interval"] == canonical


def test_spec_hash_ignores_spelling_defaults_metadata_and_status():
    reference = load_spec(SKETCH).spec_hash()
    assert len(reference) == 64
    assert _load(spec__analysis__maxDuration="900s").spec_hash() == reference
    assert _load(spec__analysis__alpha=0.01, spec__router=DELETE).spec_hash() == reference
    assert _load(metadata__name="other", metadata__uid="x").spec_hash() == reference

    def reverse(node: object) -> object:
        if isinstance(node, dict):
            return {key: reverse(node[key]) for key in reversed(list(node))}
        return node

    reordered = yaml.safe_dump(reverse(_document()), sort_keys=False)
    assert reordered.startswith("spec:")
    assert load_spec(reordered).spec_hash() == reference


@pytest.mark.parametrize(
    "changes",
    [
        {"spec__analysis__accuracy__maxDrop": 0.03},
        {"spec__canary__version": "v3"},
        {"spec__steps": [5, 100]},
        {"spec__analysis__latency__maxMs": 250},
    ],
)
def test_spec_hash_changes_with_the_spec(changes):
    assert _load(**changes).spec_hash() != load_spec(SKETCH).spec_hash()


def test_round_trip_through_json_and_a_string_duration_in_the_schema():
    rollout = load_spec(SKETCH)
    assert ModelRollout.model_validate_json(rollout.model_dump_json()) == rollout
    schema = ModelRollout.model_json_schema()
    analysis = schema["$defs"]["AnalysisSpec"]["properties"]
    assert analysis["interval"]["type"] == "string"
    assert "maxDuration" in analysis


def test_an_error_check_judges_a_regressor_instead_of_accuracy() -> None:
    document = _document(
        spec__analysis__accuracy=DELETE,
        spec__analysis__error={"metric": "rmse", "maxIncrease": 0.1},
    )
    rollout = parse_spec(document)
    analysis = rollout.spec.analysis
    assert analysis.accuracy is None
    assert (analysis.error.metric, analysis.error.max_increase) == ("rmse", 0.1)  # type: ignore[union-attr]
