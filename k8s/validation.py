"""Offline validation of Kubernetes objects against the real schemas.

Why these schemas: no API server runs where the manifests are rendered and tested, and a
hand-written check would only agree with itself. Core kinds validate against the OpenAPI schemas
of a pinned Kubernetes release that the ``kubernetes-validate`` package ships (its *strict*
variant, which refuses unknown fields the way ``kubectl`` does by default). Gateway API, Istio and
prometheus-operator kinds validate against the ``openAPIV3Schema`` of their released CRDs, vendored
in ``schemas/``; ModelRollout against the CRD that `mlcanary.k8s.crd` generates.

CRD schemas are OpenAPI v3.0 with Kubernetes extensions, so they are translated before jsonschema
sees them: ``nullable`` becomes a ``null`` type, ``x-kubernetes-int-or-string`` an integer or a
string, and every object with declared properties (and no ``x-kubernetes-preserve-unknown-fields``)
refuses unknown ones, which is what the API server does under strict field validation instead of
pruning them. What is not checked: CEL rules (``x-kubernetes-validations``), formats, and the API
server's own semantic checks (a Service selector matching pods, quota...).

Every message names the object (``Kind/name``) and the JSON path of the offending field. An
object whose kind has no schema is an error: silently passing it would make a typo in ``kind``
look valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from mlcanary.k8s import crd

__all__ = [
    "KUBERNETES_VERSION",
    "SCHEMA_DIR",
    "validate_object",
    "validate_objects",
]

# The newest release whose schemas the installed kubernetes-validate ships.
KUBERNETES_VERSION = "1.37.0"
SCHEMA_DIR = Path(__file__).parent / "schemas"

_CORE_DIR = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
# metadata.name of most kinds is a DNS-1123 subdomain.
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MESSAGE_LIMIT = 300


def _where(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(object)"


def _identity(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{obj.get('kind') or '(no kind)'}/{name or '(no name)'}"


def _openapi_to_jsonschema(node: Any) -> Any:
    """A CRD's OpenAPI v3.0 schema, with its Kubernetes extensions, as plain JSON Schema draft 4."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    result = {key: _openapi_to_jsonschema(value) for key, value in node.items()}
    if result.pop("x-kubernetes-int-or-string", False) and "type" not in result:
        result["type"] = ["integer", "string"]
    if result.pop("nullable", False):
        if "type" in result:
            kinds = result["type"] if isinstance(result["type"], list) else [result["type"]]
            result["type"] = [*kinds, "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields", False)
    ):
        result["additionalProperties"] = False
    return result


def _crd_documents() -> Iterator[Mapping[str, Any]]:
    for path in sorted(SCHEMA_DIR.glob("*/*.yaml")):
        # libyaml's loader: the vendored CRDs are 1.5 MB that the pure-Python one parses slowly.
        yield from (doc for doc in yaml.load_all(path.read_text(), yaml.CSafeLoader) if doc)
    yield crd.crd()


@cache
def _crd_schemas() -> dict[tuple[str, str], Mapping[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every version of every known CRD."""
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    for document in _crd_documents():
        spec = document["spec"]
        for version in spec["versions"]:
            if version.get("served", True):
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


@cache
def _crd_groups() -> frozenset[str]:
    return frozenset(api_version.rpartition("/")[0] for api_version, _ in _crd_schemas())


@cache
def _core_registry() -> Registry[Any]:
    definitions = schema_contents(f"{_CORE_DIR}/_definitions.json", KUBERNETES_VERSION)
    return Resource.from_contents(definitions) @ Registry()


def _core_schema_file(api_version: str, kind: str) -> str:
    """The file kubernetes-validate names a kind's schema by: apps/v1 Deployment ->
    deployment-apps-v1.json; rbac.authorization.k8s.io/v1 keeps only "rbac"."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{_CORE_DIR}/{kind.lower()}-{group_version}.json"


@cache
def _validator(api_version: str, kind: str) -> Validator | str:
    """The cached validator for a kind, or why there is none."""
    schema = _crd_schemas().get((api_version, kind))
    if schema is not None:
        translated = _openapi_to_jsonschema(schema)
        # The API server adds these to every custom resource's schema; some CRDs omit them.
        translated.setdefault("properties", {}).update(
            {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
            }
        )
        translated["required"] = sorted({*translated.get("required", ()), "apiVersion", "kind"})
        return Draft4Validator(translated)
    group = api_version.rpartition("/")[0]
    if group in _crd_groups():
        served = sorted(v for v, k in _crd_schemas() if k == kind and v.startswith(f"{group}/"))
        return f"kind {kind} is not served as {api_version} (served: {', '.join(served) or 'none'})"
    try:
        core = schema_contents(_core_schema_file(api_version, kind), KUBERNETES_VERSION)
    except FileNotFoundError:
        return (
            f"unknown kind {kind} in {api_version}"
            f" (neither in Kubernetes {KUBERNETES_VERSION} nor in a known CRD)"
        )
    return Draft202012Validator(core, registry=_core_registry())


def _message(error: ValidationError) -> str:
    deepest = best_match(error.context) if error.context else error
    text = deepest.message
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return f"{_where(deepest.absolute_path)}: {text}"


def validate_object(obj: Mapping[str, Any]) -> list[str]:
    """Every problem with one object, each naming the object and the field; empty when valid."""
    who = _identity(obj)
    missing = [
        field
        for field in ("apiVersion", "kind")
        if not isinstance(obj.get(field), str) or not obj[field]
    ]
    problems = [f"{who}: {field}: required, a non-empty string" for field in missing]
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        problems.append(f"{who}: metadata.name: required, a non-empty string")
    elif len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
        problems.append(f"{who}: metadata.name: {name!r} is not a DNS-1123 subdomain")
    if missing:
        return problems  # without both, there is no schema to pick
    validator = _validator(obj["apiVersion"], obj["kind"])
    if isinstance(validator, str):
        return [*problems, f"{who}: apiVersion/kind: {validator}"]
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [*problems, *(f"{who}: {_message(error)}" for error in errors)]


def validate_objects(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """`validate_object` over many, plus one check across them: no two objects share a
    kind, namespace and name (the second would silently replace the first when applied)."""
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        problems.extend(validate_object(obj))
        if isinstance(obj, Mapping) and isinstance(obj.get("metadata"), Mapping):
            key = (
                str(obj.get("kind")),
                str(obj["metadata"].get("namespace", "")),
                str(obj["metadata"].get("name")),
            )
            if key in seen:
                problems.append(f"{_identity(obj)}: metadata.name: defined twice")
            seen.add(key)
    return problems
