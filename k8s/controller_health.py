"""The controller's liveness and readiness, over HTTP for the kubelet's probes.

Why liveness is "the loop came round lately" and not "the API server answers": the loop waits
for an unreachable API server by itself and lists again when it is back, which a restart would
not do better; what only a restart cures is a loop that no longer moves, a request that hangs
with no timeout (a watch whose connection went silent) or a tick that never returns. So the loop
marks each step it completes (`LoopProgress.beat`), and ``/healthz`` answers 503 once no step
was marked for longer than the bound, which has to exceed the longest step the loop takes when
nothing is wrong (a watch, ``watch_timeout_s``). ``/readyz`` answers 200 once the rollouts have
been listed: before that the controller has not seen what it is to run.

A standby replica (`mlcanary.k8s.leading`) runs no loop over the rollouts; its loop is the
elector's, which tries for the lease every retry period and marks each try as a step, so a
standby is alive while it keeps trying, and fails liveness like a leader if that stops. It is
ready once it has read the Lease: it reached the API server and knows who leads, which is all
it needs to take over. Kubernetes then has no reason to restart a healthy standby, and a rolling
update waits for the new replica to be a working candidate before stopping an old one. The
answer says which role the replica plays: ``ok: leading`` or ``ok: standing by, NAME leads``.

``/metrics`` serves the controller's own counters in Prometheus' text format: how each
notification's delivery ended (`mlcanary.notify.counts`).

`http.server` in a daemon thread: three fixed answers need no framework, and the probe must not
share the loop's thread, or a stuck loop would also stop the answer that reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HEALTH_PORT", "STALE_AFTER_S", "HealthServer", "LoopProgress"]

HEALTH_PORT = 8081
# Four default watches (30 s each) without a step: far from any healthy loop, and still a
# restart within minutes of the loop stopping.
STALE_AFTER_S = 120.0
_POLL_S = 0.05

logger = logging.getLogger("mlcanary.k8s")


class LoopProgress:
    """When the controller's loop last completed a step, and whether it has listed yet.

    ``monotonic`` is injectable so that tests move time instead of waiting for it."""

    def __init__(
        self,
        stale_after_s: float = STALE_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s: {stale_after_s} must be above 0")
        self.stale_after_s = stale_after_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # Alive from the start: the first list may take a while against a busy API server.
        self._last = monotonic()
        self._role: str | None = None  # what /readyz says once ready

    def beat(self) -> None:
        with self._lock:
            self._last = self._monotonic()

    def listed(self) -> None:
        with self._lock:
            self._last = self._monotonic()
            self._role = "leading"

    def standing_by(self, leader: str | None) -> None:
        """A standby tried for the lease; ``leader`` is the holder the Lease named ("" when
        free), None when the Lease could not be read."""
        with self._lock:
            self._last = self._monotonic()
            if leader is not None:
                self._role = f"standing by, {leader} leads" if leader else "standing by"

    def liveness(self) -> tuple[bool, str]:
        with self._lock:
            idle = self._monotonic() - self._last
        if idle > self.stale_after_s:
            return False, f"stalled: the loop made no progress for {idle:.0f}s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            role = self._role
        if role is None:
            return False, "neither the rollouts listed nor the lease read yet"
        return True, f"ok: {role}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        progress = self.server.progress
        path = self.path.partition("?")[0]
        if path == "/metrics":
            body = generate_latest(self.server.metrics)
            self._send_body(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)
            return
        checks = {"/healthz": progress.liveness, "/readyz": progress.readiness}
        check = checks.get(path)
        if check is None:
            message = "not found: /healthz, /readyz and /metrics are served"
            self._send(HTTPStatus.NOT_FOUND, message)
            return
        ok, message = check()
        self._send(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, message)

    def _send(self, status: HTTPStatus, message: str) -> None:
        self._send_body(status, f"{message}\n".encode(), "text/plain; charset=utf-8")

    def _send_body(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("health: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], progress: LoopProgress, metrics: CollectorRegistry
    ) -> None:
        self.progress = progress
        self.metrics = metrics
        super().__init__(address, _Handler)


class HealthServer:
    """``/healthz`` and ``/readyz`` of ``progress``, and ``/metrics`` of ``metrics``, on
    ``host:port`` while the block runs; port 0 takes a free one (``.port`` says which). Raises
    OSError when it cannot listen."""

    def __init__(
        self,
        progress: LoopProgress,
        host: str,
        port: int,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self._server = _Server((host, port), progress, metrics or CollectorRegistry())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # How often it checks for `shutdown`: a stopping controller waits up to this long.
            kwargs={"poll_interval": _POLL_S},
            name="controller-health",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
