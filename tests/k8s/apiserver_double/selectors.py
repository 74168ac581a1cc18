"""Label and field selectors, parsed the way the API server reads them.

Equality (``a=b``, ``a==b``, ``a!=b``), existence (``a``, ``!a``) and set-based (``a in (x,y)``,
``a notin (x)``) label requirements; field selectors on ``metadata.name`` and
``metadata.namespace``, which is what clients use to watch one object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.k8s.apiserver_double.errors import ApiError

__all__ = ["Matcher", "parse_field_selector", "parse_label_selector"]

Matcher = Callable[[Mapping[str, Any]], bool]

_KEY = r"(?P<key>[A-Za-z0-9][A-Za-z0-9_./-]*)"
_VALUE = r"[A-Za-z0-9_.-]*"
_SET = re.compile(rf"^{_KEY}\s+(?P<op>in|notin)\s+\((?P<values>{_VALUE}(?:\s*,\s*{_VALUE})*)\)$")
_EQUALITY = re.compile(rf"^{_KEY}\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_EXISTS = re.compile(rf"^(?P<neg>!?){_KEY}$")
_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


def _requirements(selector: str) -> list[str]:
    """Split on commas that are not inside a set's parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def _bad(kind: str, selector: str, part: str) -> ApiError:
    return ApiError(400, "BadRequest", f"unable to parse {kind} selector {selector!r}: {part!r}")


def _label_requirement(part: str, selector: str) -> Matcher:
    if match := _SET.match(part):
        key, values = match["key"], {v.strip() for v in match["values"].split(",")}
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(part):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(part):
        key, negated = match["key"], bool(match["neg"])
        return lambda labels: (key in labels) != negated
    raise _bad("label", selector, part)


def parse_label_selector(selector: str | None) -> Matcher:
    """A predicate over an object's labels; every requirement must hold."""
    text = selector or ""
    checks = [_label_requirement(part, text) for part in _requirements(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return matches


def parse_field_selector(selector: str | None) -> Matcher:
    checks: list[Matcher] = []
    for part in _requirements(selector or ""):
        match = _EQUALITY.match(part)
        if match is None or match["key"] not in _FIELDS:
            raise _bad("field", selector or "", part)
        section, field = _FIELDS[match["key"]]
        value, negated = match["value"], match["op"] == "!="

        def check(obj: Mapping[str, Any], s: str = section, f: str = field, v: str = value,
                  n: bool = negated) -> bool:  # fmt: skip
            return bool(obj.get(s, {}).get(f) == v) != n

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)
