"""How a controller builds the sender of each notification target, through the registry.

Each target module defines ``SENDER``, whose ``build`` takes the target's URL (already read from
wherever the spec says) and the timeout of one attempt; `sender_for` picks the module by the
type in `mlcanary.rollout.notifications.registry`, so no platform branches on target types.

A sender makes one attempt and raises `DeliveryError` saying whether another may succeed: a
connection that failed or timed out, 429 and 5xx may pass later; any other answer will not (a
wrong URL, a body the service refuses), and is not retried. Retries, backoff and counting are the
dispatcher's, the same for every type.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from http import HTTPStatus
from typing import Protocol

from mlcanary.rollout.notifications.base import Notification
from mlcanary.rollout.notifications.registry import TARGETS
from mlcanary.rollout.notifications.spec import NotificationTarget

__all__ = [
    "DeliveryError",
    "Sender",
    "SenderKind",
    "UnresolvedUrlError",
    "check_answer",
    "resolve_url",
    "sender_for",
]

USER_AGENT = "mlcanary-notifier"
_BODY_SHOWN = 200


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnresolvedUrlError(ValueError):
    """The variable a target's ``urlFrom`` names is not set; the message names both."""


class Sender(Protocol):
    def send(self, notification: Notification) -> None:
        """One attempt; `DeliveryError` if it did not succeed."""
        ...

    def close(self) -> None: ...


class SenderKind(Protocol):
    def build(self, url: str, timeout_s: float) -> Sender: ...


def check_answer(status: int, body: str) -> None:
    """Any 2xx is delivered (Teams workflows answer 202, Slack 200 "ok")."""
    if 200 <= status < 300:
        return
    retryable = status == HTTPStatus.TOO_MANY_REQUESTS or status >= 500
    raise DeliveryError(f"answered {status}: {body[:_BODY_SHOWN]}", retryable=retryable)


def resolve_url(target: NotificationTarget, env: Mapping[str, str]) -> str:
    """The target's URL as written, or read from the variable its ``urlFrom`` names."""
    if target.url is not None:
        return target.url
    source = target.url_from
    assert source is not None  # the spec has one of url and urlFrom
    if source.env is not None:
        name, where = source.env, f"urlFrom.env names {source.env}"
    else:
        ref = source.secret_key_ref
        assert ref is not None
        name = ref.env_name
        where = (
            f"urlFrom.secretKeyRef {ref.name}/{ref.key} reaches the controller as {name} "
            "(from the Deployment `mlcanary k8s render` writes)"
        )
    value = env.get(name, "")
    if not value:
        raise UnresolvedUrlError(f"{where}, which is not set")
    if not value.startswith(("http://", "https://")):
        raise UnresolvedUrlError(f"{where}, whose value is not an http(s) URL")
    return value


def sender_for(target: NotificationTarget, url: str, timeout_s: float) -> Sender:
    kind: SenderKind = importlib.import_module(TARGETS[target.type].module).SENDER
    return kind.build(url, timeout_s)
