"""``spec.notifications``: who hears about a rollout, and of which events.

Why one list of typed targets rather than a section per service: every target gets the same
events, rules and counters, and a new type is one module and one registry line
(`mlcanary.rollout.notifications.registry`). The schema is the spec's, so the local file and the
custom resource say it the same way.

Why ``urlFrom``: a Slack or Teams webhook URL is a credential, and a spec lives in git and in
the cluster's etcd, readable by whoever may read rollouts. Those types must name where the URL
is read instead of writing it: ``urlFrom.env``, a variable of the controller's environment (on
this machine, the one ``mlcanary rollout run`` runs in), or ``urlFrom.secretKeyRef``, a key of a
Secret that ``mlcanary k8s render`` hands to the controller's pods as a variable (the controller
itself is never allowed to read Secrets: `mlcanary.k8s.rbac`).

The events, named for what happened rather than for the phase reached:

- ``Started``: the first step's traffic moved (Pending, or a new version, to Progressing);
- ``Advanced``: the next step's traffic moved;
- ``Paused`` and ``Resumed``: by a person;
- ``Promoted``: the canary serves all traffic (Succeeded);
- ``RolledBack``: stable serves all traffic again, on a regression or a step that could not
  conclude by maxDuration;
- ``Aborted``: rolled back by a person;
- ``Failed``: the controller could not carry out a decision;
- a phase not named above is told by its own name (``Baking``, say).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlcanary.names import OBJECT_NAME_PATTERN
from mlcanary.rollout.notifications.registry import TARGETS
from mlcanary.rollout.observations import CamelModel
from mlcanary.rollout.status import Phase

__all__ = [
    "ABORTED",
    "ADVANCED",
    "EVENTS",
    "MAX_TARGETS",
    "ON_ENTERING",
    "RESUMED",
    "STARTED",
    "WARNINGS",
    "NotificationTarget",
    "SecretKeyRef",
    "UrlFrom",
]

STARTED, ADVANCED, RESUMED, ABORTED = "Started", "Advanced", "Resumed", "Aborted"
# The event of entering a phase; Progressing is Started or Resumed, depending on where from.
ON_ENTERING = {
    Phase.PAUSED: "Paused",
    Phase.SUCCEEDED: "Promoted",
    Phase.ROLLED_BACK: "RolledBack",
    Phase.FAILED: "Failed",
}
_TOLD_OTHERWISE = {Phase.PENDING, Phase.PROGRESSING, *ON_ENTERING}
EVENTS: tuple[str, ...] = (
    STARTED,
    ADVANCED,
    ON_ENTERING[Phase.PAUSED],
    RESUMED,
    ON_ENTERING[Phase.SUCCEEDED],
    ON_ENTERING[Phase.ROLLED_BACK],
    ABORTED,
    ON_ENTERING[Phase.FAILED],
    *(phase.value for phase in Phase if phase not in _TOLD_OTHERWISE),
)
# What a person should look at: a Kubernetes Warning Event, a red message.
WARNINGS = frozenset({"RolledBack", ABORTED, "Failed"})
MAX_TARGETS = 10  # each is a sender thread in the controller; ten is already many channels


def _known_type(value: str) -> str:
    if value not in TARGETS:
        raise PydanticCustomError(
            "unknown_name", f"unknown notification type {value!r}; known: {', '.join(TARGETS)}"
        )
    return value


def _known_event(value: str) -> str:
    if value not in EVENTS:
        raise PydanticCustomError(
            "unknown_name", f"unknown event {value!r}; known: {', '.join(EVENTS)}"
        )
    return value


TargetType = Annotated[
    str,
    AfterValidator(_known_type),
    WithJsonSchema({"type": "string", "enum": list(TARGETS)}),
]
EventName = Annotated[
    str,
    AfterValidator(_known_event),
    WithJsonSchema({"type": "string", "enum": list(EVENTS)}),
]


class SecretKeyRef(CamelModel):
    """A key of a Secret in the rollout's namespace; a cluster's only."""

    name: str = Field(pattern=OBJECT_NAME_PATTERN, max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)

    @property
    def env_name(self) -> str:
        """The controller's environment variable that holds this key: readable, and unique
        (the digest tells apart names that only differ in a character replaced here)."""
        readable = re.sub(r"[^A-Z0-9]", "_", f"{self.name}_{self.key}".upper())
        digest = hashlib.sha256(f"{self.name}/{self.key}".encode()).hexdigest()[:8].upper()
        return f"NOTIFY_{readable}_{digest}"


class UrlFrom(CamelModel):
    """Where a URL that must not be written in the spec is read from: one of the two."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=253)
    secret_key_ref: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> UrlFrom:
        if (self.env is None) == (self.secret_key_ref is None):
            raise PydanticCustomError("one_source", "set one of env and secretKeyRef")
        return self


class NotificationTarget(CamelModel):
    """One target: its type, its URL (or where to read it) and the events it gets (all when
    unset)."""

    type: TargetType
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2048)
    url_from: UrlFrom | None = None
    events: list[EventName] | None = Field(default=None, min_length=1)

    @field_validator("url")
    @classmethod
    def _not_a_credential(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if value is not None and kind is not None and TARGETS[kind].secret_url:
            raise PydanticCustomError(
                "secret_url",
                f"a {kind} webhook URL is a credential: read it with urlFrom "
                "(env, or secretKeyRef in a cluster) instead of writing it in the spec",
            )
        return value

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise PydanticCustomError("duplicate_events", f"an event is named twice: {value}")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> NotificationTarget:
        if (self.url is None) == (self.url_from is None):
            raise PydanticCustomError("one_url", "set one of url and urlFrom")
        return self

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events
