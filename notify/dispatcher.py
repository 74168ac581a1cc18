"""Delivery off the controller's thread: a bounded queue and a sender thread per target.

Why this shape: ``notify`` is called from a tick, which must never wait on a chat service. It
only puts the notification on each interested target's queue and returns; each target's thread
sends in order, so a slow or broken target holds up neither the tick nor the other targets. The
rules (`DeliveryRules`), the same for every type:

- one attempt lasts at most ``timeout_s``;
- an attempt that may pass later (no answer, a timeout, 429, 5xx) is retried up to ``attempts``
  in all, waiting ``backoff_s``, then twice that, and so on; any other answer fails at once;
- a target whose queue already holds ``queue_size`` notifications drops the new one;
- `Dispatcher.close` lets the queues empty for at most ``flush_s`` and returns: what is still
  queued then is sent by the threads while the process lives (the cluster controller), or lost
  when it ends (``mlcanary rollout run``).

Each ending is counted (`mlcanary.notify.counts`) and logged without the URL. Delivery is at most
once: a notification queued when the controller stops is not sent by the next one.

Why a plain loop rather than a retry library: the retry is four lines around one call, and the
thread, the queue and the counters around it would stay ours anyway.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from mlcanary.notify.counts import DeliveryCounts, Outcome
from mlcanary.notify.kind import (
    DeliveryError,
    Sender,
    UnresolvedUrlError,
    resolve_url,
    sender_for,
)
from mlcanary.rollout.notifications.base import Notification
from mlcanary.rollout.notifications.spec import NotificationTarget
from mlcanary.rollout.spec import ModelRollout

__all__ = ["DeliveryRules", "Dispatcher", "dispatcher_for"]

logger = logging.getLogger("mlcanary.notify")


@dataclass(frozen=True)
class DeliveryRules:
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 1.0
    queue_size: int = 100
    flush_s: float = 10.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.flush_s < 0:
            raise ValueError(f"timeouts must be positive: {self}")
        if self.attempts < 1 or self.queue_size < 1:
            raise ValueError(f"attempts and queue_size must be at least 1: {self}")


class _Target:
    """One target's queue and the thread that empties it."""

    def __init__(
        self,
        *,
        rollout: str,
        label: str,
        target: NotificationTarget,
        sender: Sender | None,
        problem: str | None,
        rules: DeliveryRules,
        counts: DeliveryCounts,
    ) -> None:
        self.label = label
        self._rollout = rollout
        self._target = target
        self._sender = sender
        self._problem = problem
        self._rules = rules
        self._counts = counts
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name=f"notify {rollout} {label}", daemon=True
        )
        if sender is not None:
            self._thread.start()

    def _ended(self, outcome: Outcome) -> None:
        self._counts.ended(self._rollout, self.label, self._target.type, outcome)

    def offer(self, notification: Notification) -> None:
        """Queue it, at once; never blocks."""
        if not self._target.wants(notification.event):
            return
        if self._sender is None:
            self._ended("dropped")
            logger.warning(
                "%s: %s not sent to %s: %s",
                self._rollout,
                notification.event,
                self.label,
                self._problem,
            )
            return
        # One producer (the controller's tick): the size can only have shrunk since it was read.
        if self._queue.qsize() >= self._rules.queue_size:
            self._ended("dropped")
            logger.warning(
                "%s: %s dropped for %s: %d notifications already queued",
                self._rollout,
                notification.event,
                self.label,
                self._queue.qsize(),
            )
            return
        self._queue.put_nowait(notification)

    def _run(self) -> None:
        assert self._sender is not None
        try:
            while (notification := self._queue.get()) is not None:
                self._deliver(self._sender, notification)
        finally:
            self._sender.close()

    def _deliver(self, sender: Sender, notification: Notification) -> None:
        rules = self._rules
        for attempt in range(1, rules.attempts + 1):
            try:
                sender.send(notification)
            except DeliveryError as exc:
                if exc.retryable and attempt < rules.attempts:
                    self._counts.retried(self._rollout, self.label, self._target.type)
                    time.sleep(rules.backoff_s * 2 ** (attempt - 1))
                    continue
                problem = str(exc)
            except Exception as exc:  # a sender's bug must not end the thread
                logger.exception("%s: sending to %s broke", self._rollout, self.label)
                problem = repr(exc)
            else:
                self._ended("delivered")
                return
            self._ended("failed")
            logger.warning(
                "%s: %s not delivered to %s after %d attempt(s): %s",
                self._rollout,
                notification.event,
                self.label,
                attempt,
                problem,
            )
            return

    def stop(self) -> None:
        """Send what is queued, then end."""
        if self._thread.is_alive():
            self._queue.put_nowait(None)

    def join(self, timeout_s: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)


class Dispatcher:
    """A rollout's targets as one `mlcanary.rollout.notifications.base.Notifier`."""

    def __init__(self, targets: list[_Target], rules: DeliveryRules) -> None:
        self._targets = targets
        self._rules = rules

    @property
    def targets(self) -> list[str]:
        return [target.label for target in self._targets]

    def notify(self, notification: Notification) -> None:
        for target in self._targets:
            target.offer(notification)

    def close(self) -> None:
        for target in self._targets:
            target.stop()
        deadline = time.monotonic() + self._rules.flush_s
        for target in self._targets:
            target.join(max(0.0, deadline - time.monotonic()))


def dispatcher_for(
    rollout: ModelRollout,
    counts: DeliveryCounts,
    rules: DeliveryRules | None = None,
    env: Mapping[str, str] = os.environ,
) -> Dispatcher:
    """The spec's targets, their URLs read from ``env`` now. A target that cannot send (its URL
    is not set, its library not installed) is kept, dropping each notification with the
    reason: a missing credential must never stop a rollout, and the counters and log say what
    is wrong."""
    rules = rules or DeliveryRules()
    name = rollout.metadata.name
    targets = []
    for index, target in enumerate(rollout.spec.notifications):
        label = f"notifications[{index}]"
        sender, problem = None, None
        try:
            sender = sender_for(target, resolve_url(target, env), rules.timeout_s)
        except UnresolvedUrlError as exc:
            problem = str(exc)
        except ImportError as exc:
            problem = (
                f"the {target.type} sender needs {exc.name}, which comes with the 'notify' "
                "extra: pip install 'mlcanary[notify]'"
            )
        if problem is not None:
            logger.warning("%s: %s (%s) can get nothing: %s", name, label, target.type, problem)
        targets.append(
            _Target(
                rollout=name,
                label=label,
                target=target,
                sender=sender,
                problem=problem,
                rules=rules,
                counts=counts,
            )
        )
    return Dispatcher(targets, rules)
