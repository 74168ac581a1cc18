"""The generic webhook: the `Notification` itself as JSON, POSTed to the target's URL.

Why no library beyond httpx (the project's HTTP client): the body is mlcanary's own, documented
field by field in docs/notifications.md, so there is no service format to get right, and the
one request is what httpx does; retries and backoff are the dispatcher's.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mlcanary.notify.kind import USER_AGENT, DeliveryError, check_answer
from mlcanary.rollout.notifications.base import Notification

__all__ = ["SENDER", "WebhookSender", "post_json"]


def post_json(client: httpx.Client, url: str, body: bytes) -> None:
    """One POST of a JSON body, its outcome as the dispatcher needs it: a return, or a
    `DeliveryError` that says whether to try again."""
    try:
        answer = client.post(url, content=body, headers={"content-type": "application/json"})
    except httpx.HTTPError as exc:  # timeouts and connection errors
        raise DeliveryError(f"no answer: {exc!r}", retryable=True) from exc
    check_answer(answer.status_code, answer.text)


class WebhookSender:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._client = httpx.Client(timeout=timeout_s, headers={"user-agent": USER_AGENT})

    def send(self, notification: Notification) -> None:
        post_json(self._client, self._url, notification.model_dump_json().encode())

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class _Kind:
    def build(self, url: str, timeout_s: float) -> WebhookSender:
        return WebhookSender(url, timeout_s)


SENDER = _Kind()
