"""The gates of a rollout asked over HTTP (`mlcanary.rollout.gates`).

Each gate gets a POST with a small JSON body saying which rollout asks and what it is about to
do, as Flagger's confirm webhooks do; a 2xx opens it. Anything else keeps it closed and is
said in the status: the status code and the start of the body, or why no answer came (refused,
timed out). A gate is asked again at every tick that would move on, so a closed gate opens by
itself once its endpoint answers 2xx.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from mlcanary.rollout.gates import GateOutcome
from mlcanary.rollout.spec import Gate, ModelRollout

__all__ = ["HttpGates"]

_SHOWN = 200  # characters of a closed gate's answer kept in the status


@dataclass(frozen=True)
class HttpGates:
    """The controller's `Confirm`: asks each gate in turn. A client per asking, since gates are
    asked only when a rollout would move on: nothing is held open between."""

    rollout: ModelRollout
    transport: httpx.BaseTransport | None = None

    def __call__(self, gates: Sequence[Gate]) -> list[GateOutcome]:
        with httpx.Client(transport=self.transport, follow_redirects=False) as client:
            return [self._ask(client, gate) for gate in gates]

    def _ask(self, client: httpx.Client, gate: Gate) -> GateOutcome:
        spec = self.rollout.spec
        body = {
            "rollout": self.rollout.metadata.name,
            "namespace": self.rollout.metadata.namespace,
            "model": spec.model,
            "stable": spec.stable.version,
            "canary": spec.canary.version,
            "gate": gate.name,
            "before": gate.before,
        }
        try:
            answer = client.post(gate.url, json=body, timeout=gate.timeout.total_seconds())
        except httpx.HTTPError as exc:
            return GateOutcome(gate.name, False, f"no answer: {exc or type(exc).__name__}")
        if answer.is_success:
            return GateOutcome(gate.name, True, f"HTTP {answer.status_code}")
        text = " ".join(answer.text.split())[:_SHOWN]
        return GateOutcome(gate.name, False, f"HTTP {answer.status_code}: {text}".rstrip(": "))
