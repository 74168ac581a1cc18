"""Kubernetes Events on a ModelRollout: what ``kubectl describe mro NAME`` shows.

Why Events as well as the status: the status keeps the last decisions, Events are the cluster's
own timeline that people and alerting already watch (a rollback is a Warning, like a failed pod).
Recording one never fails the controller: an Event that cannot be written is logged and dropped.

`EventNotifier` records every notification of a rollout (`mlcanary.rollout.notifications`) as an
Event whose reason is the notification's event (Started, Advanced, Paused, Resumed, Promoted,
RolledBack, Aborted, Failed, or a phase's own name): a Warning for a rollback, an abort or a
failure, Normal otherwise. It writes in the tick's thread, as every request of the controller
does, and answers within the API client's own bounds.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from kubernetes.client import (
    CoreV1Api,
    CoreV1Event,
    V1EventSource,
    V1ObjectMeta,
    V1ObjectReference,
)
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s import naming
from mlcanary.rollout.clock import utcnow
from mlcanary.rollout.notifications.base import Notification
from mlcanary.rollout.spec import API_VERSION, KIND

__all__ = ["EventNotifier", "EventRecorder"]

logger = logging.getLogger("mlcanary.k8s")
_MESSAGE_LIMIT = 1024


class EventRecorder:
    def __init__(
        self,
        api: CoreV1Api,
        namespace: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._clock = clock
        self._instance = socket.gethostname()

    def record(
        self,
        name: str,
        uid: str | None,
        kind: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        now = self._clock()
        event = CoreV1Event(
            metadata=V1ObjectMeta(generate_name=f"{name}.", namespace=self._namespace),
            involved_object=V1ObjectReference(
                api_version=API_VERSION, kind=KIND, name=name, namespace=self._namespace, uid=uid
            ),
            type=kind,
            reason=reason,
            message=message[:_MESSAGE_LIMIT],
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=V1EventSource(component=naming.CONTROLLER),
            reporting_component=f"mlcanary.dev/{naming.CONTROLLER}",
            reporting_instance=self._instance,
        )
        try:
            self._api.create_namespaced_event(self._namespace, event)
        except (ApiException, HTTPError) as exc:
            logger.warning("cannot record event %s on ModelRollout %s: %s", reason, name, exc)


class EventNotifier:
    """One rollout's notifications, as Events on its object."""

    def __init__(self, recorder: EventRecorder, name: str, uid: str | None) -> None:
        self._recorder = recorder
        self._name = name
        self._uid = uid

    def notify(self, notification: Notification) -> None:
        kind: Literal["Normal", "Warning"] = (
            "Warning" if notification.severity == "warning" else "Normal"
        )
        self._recorder.record(self._name, self._uid, kind, notification.event, notification.message)

    def close(self) -> None:
        """Nothing queued: each Event is written when it is notified."""
