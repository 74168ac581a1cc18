"""Capacity-aware rollouts: can the canary absorb the share of traffic each step will send it?

A canary that passes its checks at 10% can still be promoted to 100% onto a deployment that
cannot serve the whole traffic: its latency checks only ever saw the 10%. Comparing each step's
share with the canary's measured capacity (`mlcanary bench capacity`) catches that before the
rollout starts. Pure, so the rollout command can call it while it validates a spec.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlcanary.rollout.spec import SHADOW, RolloutSpec

__all__ = ["capacity_warnings", "read_capacity"]


def capacity_warnings(
    spec: RolloutSpec, canary_capacity_rps: float, current_rps: float
) -> list[str]:
    """One warning per step whose share of `current_rps` exceeds the canary's capacity."""
    if canary_capacity_rps <= 0:
        raise ValueError(f"canary_capacity_rps must be > 0, got {canary_capacity_rps}")
    if current_rps < 0:
        raise ValueError(f"current_rps must be >= 0, got {current_rps}")
    warnings = []
    for step in spec.steps:
        # A shadow step sends the canary copies of a fraction of all requests.
        shadow = spec.analysis.shadow if step == SHADOW else None
        percent = shadow.fraction * 100 if shadow is not None else float(step)
        share = current_rps * percent / 100
        if share > canary_capacity_rps:
            warnings.append(
                f"step {step if shadow else f'{percent:g}%'}: canary {spec.canary.version} "
                f"would get {share:.1f} req/s of "
                f"{current_rps:.1f}, above its measured capacity of {canary_capacity_rps:.1f} req/s"
                f" ({share / canary_capacity_rps:.1f}x); add canary replicas or a step below "
                f"{100 * canary_capacity_rps / current_rps:.0f}%"
            )
    return warnings


def read_capacity(path: Path) -> float:
    """The capacity from a `mlcanary bench capacity` JSON report, refusing one without a claim."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable capacity report ({error})") from None
    capacity = document.get("capacity_rps") if isinstance(document, dict) else None
    if not isinstance(capacity, int | float) or capacity <= 0:
        status = document.get("status") if isinstance(document, dict) else None
        raise ValueError(f"{path}: capacity_rps: no capacity claimed (status {status!r})")
    return float(capacity)
