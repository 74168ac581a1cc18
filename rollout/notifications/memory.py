"""The notifier test double: keeps what it was handed, in order."""

from __future__ import annotations

from mlcanary.rollout.notifications.base import Notification

__all__ = ["RecordingNotifier"]


class RecordingNotifier:
    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.closed = False

    def notify(self, notification: Notification) -> None:
        self.notifications.append(notification)

    def close(self) -> None:
        self.closed = True

    @property
    def events(self) -> list[str]:
        return [n.event for n in self.notifications]
