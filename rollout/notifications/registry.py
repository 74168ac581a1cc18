"""The notification targets mlcanary knows, by the name a spec gives in
``spec.notifications[].type``.

Like the routers and metrics providers, each type is one module of `mlcanary.notify` that this
registry only names, so that validating a spec or generating the CRD pulls in no I/O library.
``secret_url``: the type's URL is itself a credential (whoever holds a Slack or Teams webhook
URL may post to the channel), so a spec must not write it out: it names where to read it.

Adding a type: one module defining ``SENDER`` (a `mlcanary.notify.kind.SenderKind`) and one
line here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TARGETS", "TargetEntry"]


@dataclass(frozen=True)
class TargetEntry:
    module: str  # defines SENDER
    secret_url: bool


TARGETS: dict[str, TargetEntry] = {
    "webhook": TargetEntry("mlcanary.notify.webhook", secret_url=False),
    "slack": TargetEntry("mlcanary.notify.slack", secret_url=True),
    "teams": TargetEntry("mlcanary.notify.teams", secret_url=True),
}
