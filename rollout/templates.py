"""PromQL templates of a user's own metric checks: ``{{ model }}``, ``{{ version }}``,
``{{ namespace }}`` and ``{{ interval }}`` filled in per version, as in Flagger's MetricTemplates.

Why a template language this small rather than Jinja: a spec is read by the controller with the
permissions of the controller, and a template is the user's text. Four names replaced by their
escaped values is everything a query needs and nothing a spec could abuse. Values are escaped for
a PromQL double-quoted string (the placeholders stand inside ``"..."``, where the queries that
mlcanary writes put them too); names are already restricted to safe characters by the spec, so
escaping is a second line of defence, not the only one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PLACEHOLDERS", "render_query", "template_problem"]

PLACEHOLDERS = ("model", "version", "namespace", "interval")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def template_problem(template: str) -> str | None:
    """Why `template` is not a usable query template, or None."""
    names = _PLACEHOLDER.findall(template)
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    if unknown:
        known = ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS)
        return f"unknown placeholder {unknown[0]!r}; known: {known}"
    if "{{" in _PLACEHOLDER.sub("", template) or "}}" in _PLACEHOLDER.sub("", template):
        return "unbalanced {{ or }}"
    if "version" not in names:
        return "the query must select one version with {{ version }}: it is run once per version"
    return None


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_query(template: str, values: Mapping[str, str]) -> str:
    """The query for one version; `values` holds every placeholder's value."""
    return _PLACEHOLDER.sub(lambda match: _escaped(values[match.group(1)]), template)
