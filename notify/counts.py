"""The controller's counters of notifications: how each delivery ended, and the retries.

Why a registry of its own rather than prometheus_client's global one: the cluster controller
serves exactly these on its /metrics (`mlcanary.k8s.controller_health`), the local command
prints them when a rollout ends, and a test reads the ones its own controller counted.

- ``mlcanary_notifications_total{rollout, target, type, outcome}``: ``delivered``; ``failed``
  (refused, or still failing after the last attempt); ``dropped`` (the target's queue was full,
  or the URL could not be read).
- ``mlcanary_notification_retries_total{rollout, target, type}``: attempts after the first.

``target`` is the target's place in the spec (``notifications[0]``), never its URL, which may be
a credential.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter

__all__ = ["OUTCOMES", "DeliveryCounts", "Outcome"]

Outcome = Literal["delivered", "failed", "dropped"]
OUTCOMES: tuple[Outcome, ...] = ("delivered", "failed", "dropped")


class DeliveryCounts:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._outcomes = Counter(
            "mlcanary_notifications",
            "Notifications by rollout and target, by how their delivery ended.",
            ["rollout", "target", "type", "outcome"],
            registry=self.registry,
        )
        self._retries = Counter(
            "mlcanary_notification_retries",
            "Delivery attempts after the first, by rollout and target.",
            ["rollout", "target", "type"],
            registry=self.registry,
        )

    def ended(self, rollout: str, target: str, kind: str, outcome: Outcome) -> None:
        self._outcomes.labels(rollout, target, kind, outcome).inc()

    def retried(self, rollout: str, target: str, kind: str) -> None:
        self._retries.labels(rollout, target, kind).inc()

    def _by_target(self, rollout: str) -> dict[tuple[str, str], dict[str, int]]:
        found: dict[tuple[str, str], dict[str, int]] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                labels = sample.labels
                if not sample.name.endswith("_total") or labels.get("rollout") != rollout:
                    continue
                key = (labels["target"], labels["type"])
                counts = found.setdefault(key, dict.fromkeys((*OUTCOMES, "retries"), 0))
                counts[labels.get("outcome", "retries")] += int(sample.value)
        return found

    def outcomes(self, rollout: str, target: str) -> dict[str, int]:
        """How many ended each way, and the retries, for one target."""
        for (label, _), counts in self._by_target(rollout).items():
            if label == target:
                return counts
        return dict.fromkeys((*OUTCOMES, "retries"), 0)

    def lines(self, rollout: str) -> list[str]:
        """One line per target that was sent something, for the end of a run."""
        return [
            f"{target} ({kind}): "
            + ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)
            + f", {counts['retries']} retried"
            for (target, kind), counts in sorted(self._by_target(rollout).items())
        ]
