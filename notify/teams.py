"""Microsoft Teams: an Adaptive Card, the format Teams' Workflows webhooks take.

Why these parts: Microsoft retired the Office 365 connectors' MessageCard, and the Workflows
("When a Teams webhook request is received") that replace them post Adaptive Cards only, sent
as a message with one card attachment. The card is built with ``microsoft-teams-cards``, the
card models of Microsoft's own Teams SDK (typed, checked against the card schema as they are
built), and sent with httpx like the generic webhook, since posting it is one request. pymsteams
was set aside because it only writes MessageCards, which Workflows refuse; apprise's Workflows
plugin because it takes a workflow's URL only on Microsoft's own hosts and rebuilds it, over
https only, so it cannot be pointed at a proxy, a relay or a test's server on loopback.

The card: the headline in bold (red for a rollback, abort or failure), the decision's message,
then each reason as a fact (metric: verdict and its message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from microsoft_teams.cards import AdaptiveCard, CardElement, Fact, FactSet, TextBlock

from mlcanary.notify.kind import USER_AGENT
from mlcanary.notify.webhook import post_json
from mlcanary.rollout.notifications.base import Notification

__all__ = ["SENDER", "TeamsSender", "teams_message"]

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def teams_message(notification: Notification) -> dict[str, Any]:
    """The message body: one Adaptive Card attached."""
    body: list[CardElement] = [
        TextBlock(
            text=notification.headline,
            weight="Bolder",
            size="Medium",
            wrap=True,
            color="Attention" if notification.severity == "warning" else "Good",
        ),
        TextBlock(text=notification.message, wrap=True),
    ]
    if notification.reasons:
        facts = [
            Fact(title=r.metric, value=f"{r.verdict.value}: {r.message}")
            for r in notification.reasons
        ]
        body.append(FactSet(facts=facts))
    card = AdaptiveCard(body=body)
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": CARD_TYPE,
                "contentUrl": None,
                "content": card.model_dump(by_alias=True, exclude_none=True),
            }
        ],
    }


class TeamsSender:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._client = httpx.Client(timeout=timeout_s, headers={"user-agent": USER_AGENT})

    def send(self, notification: Notification) -> None:
        post_json(self._client, self._url, orjson.dumps(teams_message(notification)))

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class _Kind:
    def build(self, url: str, timeout_s: float) -> TeamsSender:
        return TeamsSender(url, timeout_s)


SENDER = _Kind()
