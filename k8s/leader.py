"""Leader election on a ``coordination.k8s.io/v1`` Lease: of several controller replicas, one
acts on the rollouts and the others stand by, ready to take over.

Why our own elector rather than the official client's ``kubernetes.leaderelection``: that one
cannot be stopped from another thread, never hands the lease back (a standby then waits out the
whole lease after every rolling update), gives up on a network error (it catches only
``ApiException``), never counts ``leaseTransitions``, exits the process on bad settings, and
writes ``renewTime`` with ``isoformat()``, which drops the fraction at a whole second where the
API server decodes a MicroTime only with its six digits. The rules are client-go's
(``tools/leaderelection``):

* the Lease holds ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime``
  and ``leaseTransitions``; every write names the resourceVersion read, so of two candidates
  writing at once the second gets 409 Conflict and has lost;
* expiry is judged on this process's monotonic clock: a candidate takes a held lease only once
  the record has stayed unchanged for ``leaseDurationSeconds`` since it first saw it, because
  ``renewTime`` is another machine's wall clock and trusting it would tie the election to
  clock skew;
* the leader renews every ``retry_period``; one that could not renew for ``renew_deadline``
  (shorter than the lease) stops leading before any standby may judge the lease expired;
* `LeaderElector.stop` hands the lease back (holder ``""``, duration 1 s), so a standby takes
  over at its next attempt instead of after the lease.

A leader that dies without handing back is replaced at most ``lease_duration`` + 2.4 x
``retry_period`` after its last renewal: a standby sees that renewal within 1.2 retry periods,
waits the lease out from then, and tries every 1.0 to 1.2 retry periods.

Every wait is a `threading.Event` wait, so stopping is prompt; every request has a timeout no
longer than what is left before the renew deadline, on a client of its own without urllib3's
retries (the elector retries on its own schedule). Bodies are plain dicts sent through
`CustomObjectsApi` on the Lease's REST paths (the requests `CoordinationV1Api` makes): the
client's models would write datetimes with ``isoformat()``, and a dict carries back unchanged
the fields the elector does not own (labels, ``spec.strategy``).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from kubernetes.client import ApiClient, Configuration, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mlcanary.k8s.api_objects import CONFLICT, NOT_FOUND, custom_object
from mlcanary.rollout.clock import utcnow

__all__ = [
    "LEASE_GROUP",
    "LEASE_PLURAL",
    "LEASE_VERSION",
    "LeaderElector",
    "LeaseSettings",
    "LeaseSettingsError",
    "format_micro_time",
]

LEASE_GROUP = "coordination.k8s.io"
LEASE_VERSION = "v1"
LEASE_PLURAL = "leases"
# client-go's constant: acquisition retries wait 1.0 to 1.2 retry periods, and a renew deadline
# must leave room for at least one retry at that jitter.
_JITTER = 1.2
_MIN_REQUEST_S = 0.05
# The hand-back is a courtesy (a standby takes an unrenewed lease anyway once it expires): it
# must not hold a shutdown up.
_RELEASE_S = 1.0

logger = logging.getLogger("mlcanary.k8s")


def format_micro_time(moment: datetime) -> str:
    """A metav1.MicroTime: UTC with exactly six fraction digits, the only form the API server
    decodes (``2006-01-02T15:04:05.000000Z07:00``); ``...:05Z`` is refused with 400."""
    if moment.tzinfo is None:
        raise ValueError("a MicroTime needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseSettingsError(ValueError):
    """A lease setting that cannot work; ``setting`` names it (``lease_duration``...)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class LeaseSettings:
    """Which Lease, who is asking, and client-go's three durations (its defaults)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise LeaseSettingsError("identity", "must not be empty")
        if self.retry_period <= 0:
            raise LeaseSettingsError("retry_period", f"{self.retry_period:g}s must be above 0")
        if self.renew_deadline <= _JITTER * self.retry_period:
            raise LeaseSettingsError(
                "renew_deadline",
                f"{self.renew_deadline:g}s must exceed {_JITTER} x the retry period"
                f" ({_JITTER * self.retry_period:g}s), or a leader could not retry once in time",
            )
        if self.lease_duration <= self.renew_deadline:
            raise LeaseSettingsError(
                "lease_duration",
                f"{self.lease_duration:g}s must exceed the renew deadline"
                f" ({self.renew_deadline:g}s), or a standby could take the lease while the"
                " leader still acts",
            )

    @property
    def duration_seconds(self) -> int:
        """What the Lease stores: whole seconds, rounded up so a standby never waits less."""
        return math.ceil(self.lease_duration)

    @property
    def request_timeout(self) -> float:
        return min(self.renew_deadline / 2, 5.0)


@dataclass(frozen=True)
class _Record:
    """The election fields of a Lease's spec, as stored."""

    holder: str
    duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: dict[str, Any]) -> _Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def into(self, lease: dict[str, Any]) -> dict[str, Any]:
        """``lease`` with these fields set and every other field kept."""
        body = copy.deepcopy(lease)
        body.setdefault("spec", {}).update(
            holderIdentity=self.holder,
            leaseDurationSeconds=self.duration_seconds,
            acquireTime=self.acquire_time,
            renewTime=self.renew_time,
            leaseTransitions=self.transitions,
        )
        return body


def _ignore_holder(holder: str | None) -> None:
    """The default ``on_candidate``: nobody listens."""


def _nothing() -> None:
    """The default leading callbacks."""


class LeaderElector:
    """Candidate, then leader, until `stop`; in a thread of its own (`start`), or one attempt
    at a time for a process that acts once (`try_acquire`).

    The callbacks run on the elector's thread and must return quickly: ``on_started_leading``
    lets the controller act, ``on_stopped_leading`` makes it stop (after a lost renewal the
    elector is a candidate again); ``on_candidate`` follows each attempt made while not
    leading, with the holder the Lease named, or None when the API server gave no Lease.
    As a context manager it stops (handing the lease back) and closes its client on exit.
    """

    def __init__(
        self,
        settings: LeaseSettings,
        configuration: Configuration,
        *,
        user_agent: str,
        on_started_leading: Callable[[], None] = _nothing,
        on_stopped_leading: Callable[[], None] = _nothing,
        on_candidate: Callable[[str | None], None] = _ignore_holder,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        own = copy.copy(configuration)
        own.retries = 0
        self._client = ApiClient(own)
        self._client.user_agent = user_agent
        self._api = CustomObjectsApi(self._client)
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_candidate = on_candidate
        self._clock = clock
        self._stop = threading.Event()
        self._leading = threading.Event()
        self._thread: threading.Thread | None = None
        # Owned by the thread that makes the attempts.
        self._lease: dict[str, Any] | None = None  # as last read or written
        self._observed: _Record | None = None
        self._observed_at = 0.0  # monotonic: when the observed record last changed
        self._seen = False  # the last attempt read or wrote the Lease
        self._valid_until = 0.0  # monotonic: the leader stops acting after this

    @property
    def leading(self) -> bool:
        """Holding the lease, renewed less than the renew deadline ago."""
        return self._leading.is_set() and time.monotonic() < self._valid_until

    @property
    def holder(self) -> str | None:
        """The holder the Lease last named ("" once handed back; None before it was read)."""
        return self._observed.holder if self._observed is not None else None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the elector was started already")
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop, handing the lease back if held; whether the elector has finished within
        ``timeout_s`` (it may be in the middle of a request, bounded by its own timeout)."""
        self._stop.set()
        if self._thread is None:
            self._finish()
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def try_acquire(self) -> bool:
        """One attempt, for a process that acts once and then hands back (`stop`)."""
        if self._attempt(deadline=None):
            self._begin()
            return True
        return False

    def __enter__(self) -> LeaderElector:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self._client.close()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        try:
            while self._acquire():
                self._begin()
                self._renew()
                if not self._stop.is_set():
                    self._end()
        finally:
            self._finish()

    def _finish(self) -> None:
        """Stop leading, and hand the lease back if this process still holds it."""
        self._end()
        self._release()

    def _acquire(self) -> bool:
        """Attempt until the lease is ours (True) or the elector is stopped (False)."""
        while not self._stop.is_set():
            acquired = self._attempt(deadline=None)
            if acquired:
                return True
            self._on_candidate(self.holder if self._seen else None)
            jitter = random.uniform(1.0, _JITTER)  # noqa: S311 (spreading retries, not secrets)
            self._stop.wait(self.settings.retry_period * jitter)
        return False

    def _renew(self) -> None:
        """Renew every retry period; return when stopped or when the lease is lost."""
        retry = self.settings.retry_period
        while not self._stop.wait(retry):
            while not self._attempt(deadline=self._valid_until):
                left = self._valid_until - time.monotonic()
                holder = self.holder
                if left <= 0 or holder not in ("", self.settings.identity):
                    logger.warning(
                        "%s: lost the lease %s (%s)",
                        self.settings.identity,
                        self.settings.name,
                        f"taken by {holder}" if left > 0 else "not renewed in time",
                    )
                    return
                if self._stop.wait(min(retry, left)):
                    return

    def _begin(self) -> None:
        if not self._leading.is_set():
            logger.info("%s: leading (lease %s)", self.settings.identity, self.settings.name)
            self._leading.set()
            self._on_started()

    def _end(self) -> None:
        if self._leading.is_set():
            logger.info("%s: stopped leading", self.settings.identity)
            self._leading.clear()
            self._valid_until = 0.0
            self._on_stopped()

    def _timeout(self, deadline: float | None) -> float:
        timeout = self.settings.request_timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        return max(_MIN_REQUEST_S, timeout)

    def _attempt(self, deadline: float | None) -> bool:
        """One try to acquire or renew; False on a lost race or an unreachable server."""
        started = time.monotonic()
        self._seen = False
        try:
            acquired = self._acquire_or_renew(started, deadline)
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            logger.warning(
                "%s: lease %s: %s",
                self.settings.identity,
                self.settings.name,
                f"HTTP {exc.status} {exc.reason}" if isinstance(exc, ApiException) else exc,
            )
            return False
        if acquired:
            # From before the request went out: the leader's view errs on the short side.
            self._valid_until = started + self.settings.renew_deadline
        return acquired

    def _holds(self) -> bool:
        return self._observed is not None and self._observed.holder == self.settings.identity

    def _unexpired(self, now: float) -> bool:
        assert self._observed is not None
        duration = self._observed.duration_seconds or self.settings.duration_seconds
        return now < self._observed_at + duration

    def _observe(self, lease: dict[str, Any], now: float) -> None:
        self._lease = lease
        self._seen = True
        record = _Record.of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, now

    def _acquire_or_renew(self, now: float, deadline: float | None) -> bool:
        settings = self.settings
        stamp = format_micro_time(self._clock())
        # The leader renews the Lease it last wrote, without reading it first; a 409 or 404
        # means it changed, and it is read again below.
        if self._lease is not None and self._holds() and self._unexpired(now):
            assert self._observed is not None
            try:
                self._write(self._renewal(self._observed, stamp), deadline)
                return True
            except ApiException as exc:
                if exc.status not in (CONFLICT, NOT_FOUND):
                    raise
        try:
            answer = self._api.get_namespaced_custom_object(
                LEASE_GROUP, LEASE_VERSION, settings.namespace, LEASE_PLURAL, settings.name,
                _request_timeout=self._timeout(deadline),
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise
            return self._create(stamp, deadline)
        lease = custom_object(answer, "a Lease")
        self._observe(lease, now)
        current = _Record.of(lease)
        if current.holder and not self._holds() and self._unexpired(now):
            return False
        if self._holds():
            record = self._renewal(current, stamp)
        else:
            record = _Record(
                settings.identity, settings.duration_seconds, stamp, stamp, current.transitions + 1
            )
        try:
            self._write(record, deadline)
        except ApiException as exc:
            if exc.status not in (CONFLICT, NOT_FOUND):
                raise
            logger.info("%s: another candidate wrote the lease first", settings.identity)
            return False
        return True

    def _renewal(self, current: _Record, stamp: str) -> _Record:
        settings = self.settings
        return _Record(
            settings.identity,
            settings.duration_seconds,
            current.acquire_time or stamp,
            stamp,
            current.transitions,
        )

    def _create(self, stamp: str, deadline: float | None) -> bool:
        settings = self.settings
        record = _Record(settings.identity, settings.duration_seconds, stamp, stamp, 0)
        body = record.into(
            {
                "apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}",
                "kind": "Lease",
                "metadata": {"name": settings.name, "namespace": settings.namespace},
            }
        )
        try:
            created = self._api.create_namespaced_custom_object(
                LEASE_GROUP, LEASE_VERSION, settings.namespace, LEASE_PLURAL, body,
                _request_timeout=self._timeout(deadline),
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != CONFLICT:  # AlreadyExists: another candidate created it first
                raise
            return False
        self._observe(custom_object(created, "a Lease"), time.monotonic())
        return True

    def _write(self, record: _Record, deadline: float | None) -> None:
        """Replace the Lease last read or written, naming its resourceVersion."""
        assert self._lease is not None
        written = self._api.replace_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, self.settings.namespace, LEASE_PLURAL, self.settings.name,
            record.into(self._lease), _request_timeout=self._timeout(deadline),
        )  # fmt: skip
        self._observe(custom_object(written, "a Lease"), time.monotonic())

    def _release(self) -> None:
        """Hand the lease back (client-go's ReleaseOnCancel): holder "", 1 s, one attempt
        within `_RELEASE_S`; a Lease that changed meanwhile is no longer ours to hand back."""
        if self._lease is None or not self._holds():
            return
        assert self._observed is not None
        stamp = format_micro_time(self._clock())
        released = _Record("", 1, stamp, stamp, self._observed.transitions)
        try:
            self._write(released, deadline=time.monotonic() + _RELEASE_S)
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            logger.warning("%s: could not hand the lease back: %s", self.settings.identity, exc)
            return
        logger.info("%s: handed the lease %s back", self.settings.identity, self.settings.name)
