"""Slack: an incoming-webhook message, through Slack's own SDK (``slack_sdk``).

Why ``slack_sdk.webhook.WebhookClient``: it is Slack's maintained client, has no dependencies
of its own, takes the webhook URL whole (so a Slack-compatible endpoint, a proxy, or a test's
server on loopback works as well as hooks.slack.com), and its Block Kit models refuse a block
Slack would refuse (a header over 150 characters) before anything is sent. Its own retry
handlers are turned off: retries belong to the dispatcher, the same for every target, so that
they are bounded and counted once.

The message: a header (the headline), the decision's message, then one line per reason with its
verdict; ``text`` carries the headline for notifications and clients that show no blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slack_sdk.errors import SlackRequestError
from slack_sdk.models.blocks import Block, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.webhook import WebhookClient

from mlcanary.notify.kind import USER_AGENT, DeliveryError, check_answer
from mlcanary.rollout.notifications.base import Notification

__all__ = ["SENDER", "SlackSender", "slack_blocks"]

_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000
_ICON = {"info": ":large_green_circle:", "warning": ":red_circle:"}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup (the rules say ">= 4.61")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(notification: Notification) -> list[Block]:
    lines = notification.lines()
    reasons = "\n".join(f"• {_escape(line)}" for line in lines[1:])
    blocks: list[Block] = [
        HeaderBlock(text=_clip(notification.headline, _HEADER_LIMIT)),
        SectionBlock(
            text=MarkdownTextObject(
                text=_clip(f"{_ICON[notification.severity]} {_escape(lines[0])}", _SECTION_LIMIT)
            )
        ),
    ]
    if reasons:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(reasons, _SECTION_LIMIT))))
    return blocks


class SlackSender:
    def __init__(self, url: str, timeout_s: float) -> None:
        # The client takes whole seconds.
        self._client = WebhookClient(
            url,
            timeout=max(1, math.ceil(timeout_s)),
            user_agent_prefix=USER_AGENT,
            retry_handlers=[],
        )

    def send(self, notification: Notification) -> None:
        try:
            answer = self._client.send(
                text=notification.headline, blocks=slack_blocks(notification)
            )
        except (OSError, SlackRequestError) as exc:  # urllib's URLError and timeouts among them
            raise DeliveryError(f"no answer: {exc}", retryable=True) from exc
        check_answer(answer.status_code, answer.body)

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request."""


@dataclass(frozen=True)
class _Kind:
    def build(self, url: str, timeout_s: float) -> SlackSender:
        return SlackSender(url, timeout_s)


SENDER = _Kind()
