"""The validator against the real schemas: it accepts valid objects and rejects broken ones
naming the object and the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kubernetes_validate.utils import latest_version

from mlcanary.k8s.validation import (
    KUBERNETES_VERSION,
    SCHEMA_DIR,
    validate_object,
    validate_objects,
)


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def http_route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80, "weight": 90}]}],
        },
    }


def test_the_pinned_kubernetes_version_is_the_newest_the_package_ships():
    assert KUBERNETES_VERSION.rsplit(".", 1)[0] == latest_version().rsplit(".", 1)[0]


def test_valid_core_and_crd_objects_pass():
    assert validate_objects([deployment(), http_route()]) == []


def test_a_deployment_with_an_unknown_field_and_a_wrong_type_is_rejected():
    bad = deployment()
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["imagePolicy"] = "Always"  # misspelt
    container["ports"][0]["containerPort"] = "eighty"
    problems = validate_object(bad)
    assert len(problems) == 2
    assert problems[0].startswith("Deployment/web: spec.template.spec.containers[0]:")
    assert "'imagePolicy' was unexpected" in problems[0]
    assert problems[1].startswith(
        "Deployment/web: spec.template.spec.containers[0].ports[0].containerPort:"
    )


def test_a_wrong_type_in_an_http_route_weight_is_rejected():
    bad = http_route()
    bad["spec"]["rules"][0]["backendRefs"][0]["weight"] = "90"
    assert validate_object(bad) == [
        "HTTPRoute/web: spec.rules[0].backendRefs[0].weight: '90' is not of type 'integer'"
    ]


def test_crd_bounds_are_enforced():
    bad = http_route()
    bad["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001  # maximum 1000000
    (problem,) = validate_object(bad)
    assert problem.startswith("HTTPRoute/web: spec.rules[0].backendRefs[0].weight:")


def test_an_unknown_field_in_a_crd_object_is_rejected_as_strict_field_validation_does():
    bad = http_route()
    bad["spec"]["rules"][0]["backendRef"] = []
    (problem,) = validate_object(bad)
    assert problem.startswith("HTTPRoute/web: spec.rules[0]:")
    assert "'backendRef' was unexpected" in problem


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("v1", "Servise", "unknown kind Servise in v1"),
        ("example.com/v1", "Widget", "unknown kind Widget in example.com/v1"),
        (
            "gateway.networking.k8s.io/v1alpha9",
            "HTTPRoute",
            "not served as gateway.networking.k8s.io/v1alpha9",
        ),
    ],
)
def test_an_unknown_kind_is_an_error_not_silently_valid(api_version, kind, expected):
    (problem,) = validate_object(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    )
    assert problem.startswith(f"{kind}/x: apiVersion/kind:")
    assert expected in problem


def test_missing_identity_fields_are_named():
    assert validate_object({"metadata": {}}) == [
        "(no kind)/(no name): apiVersion: required, a non-empty string",
        "(no kind)/(no name): kind: required, a non-empty string",
        "(no kind)/(no name): metadata.name: required, a non-empty string",
    ]
    bad = deployment()
    bad["metadata"]["name"] = "Web_1"
    assert validate_object(bad) == [
        "Deployment/Web_1: metadata.name: 'Web_1' is not a DNS-1123 subdomain"
    ]


def test_two_objects_of_one_kind_and_name_are_flagged():
    assert validate_objects([deployment(), copy.deepcopy(deployment())]) == [
        "Deployment/web: metadata.name: defined twice"
    ]


def test_every_vendored_crd_is_itself_a_valid_crd():
    files = sorted(SCHEMA_DIR.glob("*/*.yaml"))
    assert len(files) == 10
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            assert validate_object(document) == [], path
