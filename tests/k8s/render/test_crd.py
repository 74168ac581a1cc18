"""The ModelRollout CRD: a valid, structural CRD whose schema accepts the example specs and a
real status, and rejects what the pydantic spec rejects at the schema level."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlcanary.k8s.crd import CRD_NAME, crd, status_schema
from mlcanary.k8s.validation import KUBERNETES_VERSION, validate_object
from mlcanary.rollout.status import (
    Action,
    Condition,
    DecisionRecord,
    Phase,
    Reason,
    RolloutStatus,
    Verdict,
    Weights,
)

from .conftest import EXAMPLES


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, child in schema.get("properties", {}).items():
        found += _nodes(child, f"{path}.{name}")
    if "items" in schema:
        found += _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _nodes(schema["additionalProperties"], f"{path}.*")
    return found


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return document


def test_the_crd_validates_as_a_crd_with_kubernetes_validate():
    assert validate_object(crd()) == []
    # And through the package's own entry point, independently of our schema loading.
    kubernetes_validate.validate(crd(), KUBERNETES_VERSION, strict=True)


def test_the_crd_names_scope_and_subresource():
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == CRD_NAME == "modelrollouts.mlcanary.dev"
    assert spec["scope"] == "Namespaced"
    assert "mro" in spec["names"]["shortNames"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


INT_OR_STRING = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
}


def test_the_schema_is_structural():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        if node.get("x-kubernetes-int-or-string"):
            # Kubernetes' one exception to a type on every node: exactly this, and no type.
            assert INT_OR_STRING.items() <= node.items(), path
            assert "type" not in node, path
            continue
        assert "type" in node, path
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "default"} & node.keys(), (
            path
        )
        assert node.get("additionalProperties", {}) is not False, path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, path  # OpenAPI v3.0: a flag, not a number


def test_printer_columns_point_at_fields_of_the_schema():
    version = crd()["spec"]["versions"][0]
    paths = {path for path, _ in _nodes(version["schema"]["openAPIV3Schema"])}
    for column in version["additionalPrinterColumns"]:
        if not column["jsonPath"].startswith(".metadata."):
            assert column["jsonPath"] in paths, column


@pytest.mark.parametrize(
    "name", sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml"))
)
def test_the_example_specs_validate_against_the_crd(name):
    assert validate_object(_example(name)) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.update(steps="10,100"), "spec.steps: '10,100' is not of type 'array'"),
        (lambda s: s.update(steps=["mirror", 100]), "spec.steps[0]: 'mirror' does not match"),
        (lambda s: s.update(steps=[0, 100]), "spec.steps[0]: 0 is less than the minimum of 1"),
        (
            lambda s: s["analysis"].update(minSamples=2.5),
            "spec.analysis.minSamples: 2.5 is not of type 'integer'",
        ),
        (lambda s: s.pop("model"), "spec: 'model' is a required property"),
        (lambda s: s["canary"].pop("version"), "spec.canary: 'version' is a required property"),
        (lambda s: s["router"].update(type="nginx"), "spec.router.type: 'nginx' is not one of"),
        (
            lambda s: s["analysis"].update(alpha=0),
            "spec.analysis.alpha: 0 is less than or equal to the minimum of 0",
        ),
        (
            lambda s: s["analysis"].update(maxDuraton="5m"),
            "spec.analysis: Additional properties are not allowed",
        ),
        (
            lambda s: s["analysis"].update(interval="30"),
            "spec.analysis.interval: '30' does not match",
        ),
    ],
)
def test_a_bad_spec_is_rejected_naming_the_field(change, field):
    document = _example("better-canary.yaml")
    change(document["spec"])
    problems = validate_object(document)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"ModelRollout/digits-v2: {field}")


def test_a_disabled_check_stays_null_because_the_schema_makes_it_nullable():
    """Were it not nullable, the API server would drop the null and pydantic would then analyse
    accuracy with its default threshold."""
    document = _example("better-canary.yaml")
    document["spec"]["analysis"]["accuracy"] = None
    assert validate_object(document) == []
    accuracy = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["analysis"]["properties"]["accuracy"]
    assert accuracy["nullable"] is True


def test_a_real_status_validates_against_the_status_schema():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = RolloutStatus(
        phase=Phase.PROGRESSING,
        stable_version="v1",
        canary_version="v2",
        step_index=1,
        weights=Weights.canary_percent(10),
        step_started_at=now,
        history=(
            DecisionRecord(
                at=now,
                step_index=0,
                action=Action.ADVANCE,
                weights=Weights.canary_percent(10),
                message="step 0 passed",
                reasons=(
                    Reason(
                        metric="accuracy",
                        verdict=Verdict.PASS,
                        canary=0.97,
                        stable=0.96,
                        threshold=0.03,
                        rule="sprt",
                        message="ok",
                    ),
                ),
            ),
        ),
        conditions=(
            Condition(
                type="Progressing",
                status="True",
                reason="StepPassed",
                message="",
                last_transition_time=now,
            ),
        ),
        message="at 10%",
    )
    document = _example("better-canary.yaml")
    document["status"] = {**status.model_dump(mode="json"), "observedGeneration": 3}
    assert validate_object(document) == []
    assert "observedGeneration" in status_schema()["properties"]
    document["status"]["weights"]["canary"] = "ten"
    assert validate_object(document) == [
        "ModelRollout/digits-v2: status.weights.canary: 'ten' is not of type 'integer'"
    ]


def test_a_spec_with_a_shadow_step_validates_against_the_crd():
    document = _example("better-canary.yaml")
    document["spec"]["steps"] = ["shadow", 10, 100]
    document["spec"]["analysis"]["shadow"] = {"fraction": 0.5, "minAgreement": 0.95}
    assert validate_object(document) == []
