"""The ModelRollout CustomResourceDefinition, generated from the pydantic spec and status.

Why generated: the local YAML file and the custom resource are one schema (`rollout/spec.py`), so
the CRD is derived from `RolloutSpec` and `RolloutStatus` instead of being written twice and
drifting apart.

Why the conversion: Kubernetes accepts only *structural* schemas (OpenAPI v3.0, every node typed,
no ``$ref``, no ``anyOf`` that changes the type), which pydantic's JSON Schema is not. The
conversion inlines ``$defs``, turns ``X | None`` into ``nullable: true``, spells exclusive bounds
the OpenAPI v3.0 way and drops titles and defaults (pydantic fills defaults when the controller
reads the object, so the API server need not). Anything else it cannot express raises, so a spec
change that the CRD could not carry fails the tests instead of loosening the CRD.

Two consequences worth knowing:

* ``nullable`` matters: the API server drops a null field that is not nullable, and for
  ``analysis.accuracy: null`` ("do not analyse accuracy") pydantic would then apply the default
  and analyse it after all.
* ``additionalProperties: false`` is not allowed in a structural schema: the API server prunes
  unknown fields instead of refusing them. kubectl asks for strict field validation by default
  (server-side ``fieldValidation=Strict``), which turns an unknown field into an error; a client
  that does not gets it silently dropped, so a misspelt threshold would fall back to its default.
  `mlcanary.k8s.validation` checks objects the strict way.

The status schema mirrors `RolloutStatus` plus ``observedGeneration`` (the spec generation the
status belongs to, which the controller writes next to it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel

from mlcanary.rollout.spec import API_VERSION, KIND, RolloutSpec
from mlcanary.rollout.status import RolloutStatus

__all__ = [
    "CRD_NAME",
    "GROUP",
    "PLURAL",
    "SHORT_NAME",
    "VERSION",
    "SchemaConversionError",
    "crd",
    "spec_schema",
    "status_schema",
    "structural_schema",
]

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "modelrollouts"
SHORT_NAME = "mro"
CRD_NAME = f"{PLURAL}.{GROUP}"

# Keywords that carry over unchanged from JSON Schema to a structural OpenAPI v3.0 schema.
_KEPT = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "required",
    }
)
_INT_OR_STRING = "x-kubernetes-int-or-string"
_INT_OR_STRING_TYPES = [{"type": "integer"}, {"type": "string"}]
# Keywords with no meaning for the API server, dropped.
_DROPPED = frozenset({"title", "default", "additionalProperties", "examples"})


class SchemaConversionError(ValueError):
    """A pydantic schema construct with no structural OpenAPI equivalent, with its path."""


def _int_or_string(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Kubernetes' one exception to "a type on every node": ``x-kubernetes-int-or-string``, no
    type, and exactly ``anyOf: [{type: integer}, {type: string}]``; value checks sit beside it
    (the spec's steps: a percentage or "shadow")."""
    if node.get("anyOf") != _INT_OR_STRING_TYPES or "type" in node:
        raise SchemaConversionError(
            f"{path}: {_INT_OR_STRING} needs anyOf {_INT_OR_STRING_TYPES} and no type"
        )
    kept = {key: value for key, value in node.items() if key in _KEPT and key != "type"}
    return {_INT_OR_STRING: True, "anyOf": _INT_OR_STRING_TYPES, **kept}


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    prefix = "#/$defs/"
    if not isinstance(ref, str) or not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaConversionError(f"{path}: unresolvable $ref {ref!r}")
    # Sibling keywords of a $ref (a field's description or default) apply on top of the target.
    merged = {**defs[ref[len(prefix) :]], **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolve(merged, defs, path)


def _convert(node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs, path)
    if node.get(_INT_OR_STRING):
        return _int_or_string(node, path)
    return _typed(node, defs, path)


def _typed(node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "anyOf" in node:
        variants = [_resolve(v, defs, path) for v in node["anyOf"]]
        others = [v for v in variants if v.get("type") != "null"]
        if len(others) != 1 or len(variants) != 2:
            raise SchemaConversionError(f"{path}: anyOf other than 'X or null' is not structural")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        return {**_convert({**others[0], **outer}, defs, path), "nullable": True}
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT:
            result[key] = value
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            result[bound] = value
            result[key] = True
        elif key == "properties":
            result[key] = {
                name: _convert(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "items":
            result[key] = _convert(value, defs, f"{path}[]")
        elif key not in _DROPPED:
            raise SchemaConversionError(f"{path}: keyword {key!r} has no structural equivalent")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        if "properties" in node:
            raise SchemaConversionError(f"{path}: both properties and a map of values")
        result["additionalProperties"] = _convert(extra, defs, f"{path}.*")
    if "type" not in result:
        raise SchemaConversionError(f"{path}: a structural schema needs a type on every node")
    return result


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema (camelCase aliases) as a structural OpenAPI v3.0 schema."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    return _convert(schema, defs, model.__name__)


@cache
def _spec_schema() -> dict[str, Any]:
    return structural_schema(RolloutSpec)


@cache
def _status_schema() -> dict[str, Any]:
    schema = structural_schema(RolloutStatus)
    schema["properties"]["observedGeneration"] = {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "description": "metadata.generation of the spec this status was decided on.",
    }
    return schema


def spec_schema() -> dict[str, Any]:
    """The structural schema of ``spec`` (a fresh copy: callers may change it)."""
    return copy.deepcopy(_spec_schema())


def status_schema() -> dict[str, Any]:
    """The structural schema of ``status``: `RolloutStatus` plus ``observedGeneration``."""
    return copy.deepcopy(_status_schema())


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object, ready to apply."""
    column = "jsonPath"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "mlcanary"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
                "categories": ["mlcanary"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Model", "type": "string", column: ".spec.model"},
                        {"name": "Stable", "type": "string", column: ".spec.stable.version"},
                        {"name": "Canary", "type": "string", column: ".spec.canary.version"},
                        {"name": "Phase", "type": "string", column: ".status.phase"},
                        {"name": "Canary%", "type": "integer", column: ".status.weights.canary"},
                        {"name": "Step", "type": "integer", column: ".status.stepIndex"},
                        {"name": "Age", "type": "date", column: ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A canary rollout of one model version over another.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }
