"""Rendered objects as one multi-document YAML stream, or as a kustomize base.

Why a kustomize tree: teams keep per-cluster changes (image registry, replica counts, a GPU
node pool's labels) in overlays over a base that is regenerated, never edited by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KUSTOMIZATION", "to_yaml", "write_kustomize"]

KUSTOMIZATION = "kustomization.yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, readable in review and in kubectl edit."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


def to_yaml(objects: Sequence[dict[str, Any]]) -> str:
    return "".join(f"---\n{_dump(obj)}" for obj in objects)


def _file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_kustomize(objects: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Write ``out/base``: one file per object and a kustomization listing them in apply order.

    Refuses a base holding YAML files it would not write: a stale object left there but no
    longer listed would look deployed when it is not.
    """
    base = out / "base"
    names = [_file_name(obj) for obj in objects]
    stale = (
        sorted(p.name for p in base.glob("*.yaml") if p.name not in {*names, KUSTOMIZATION})
        if base.is_dir()
        else []
    )
    if stale:
        raise FileExistsError(f"{base} holds files this rendering does not: {', '.join(stale)}")
    base.mkdir(parents=True, exist_ok=True)
    written = []
    for name, obj in zip(names, objects, strict=True):
        (base / name).write_text(_dump(obj))
        written.append(base / name)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": names,
    }
    (base / KUSTOMIZATION).write_text(_dump(kustomization))
    return [*written, base / KUSTOMIZATION]
