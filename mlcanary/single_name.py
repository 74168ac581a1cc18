"""One importable name per module.

The top-level folders (``rollout/``, ``serving/`` ...) are the packages ``mlcanary.rollout``,
``mlcanary.serving`` ... through the links in ``mlcanary/``. From the repository root they could
also be imported bare (``import rollout.spec``), which would load every module a second time:
two ``ModelRollout`` classes that pydantic and ``isinstance`` tell apart. Each package calls
`refuse_bare_import` first thing, so the bare form fails at once instead of misbehaving later
(ruff's banned imports catch it earlier still, in the editor).
"""

from __future__ import annotations

__all__ = ["refuse_bare_import"]


def refuse_bare_import(name: str) -> None:
    if not name.startswith("mlcanary."):
        raise ImportError(f"import mlcanary.{name}, not {name}: the bare name loads it twice")
