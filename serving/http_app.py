"""The HTTP endpoints, as a Starlette app that the BentoML service mounts.

BentoML's ``@bentoml.api`` path validates input through generated pydantic models, generates the
output's JSON schema on every response, and hops to a thread per call; profiled, that was most of
a request's time for a small model (docs/serving-performance.md). A mounted ASGI app keeps
BentoML's server, workers, health and metrics endpoints and configuration, and lets these hot
endpoints parse with orjson, answer precise 4xx errors, and batch model calls.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlcanary.serving.errors import ClientError, UnavailableError

__all__ = ["ENDPOINTS", "HANDLERS", "build_app"]

logger = logging.getLogger("mlcanary.serving")

ENDPOINTS = frozenset({"/predict", "/feedback"})
_JSON = "application/json"


def _runtime(scope: Scope) -> Any:
    return getattr(scope["app"].state, "runtime", None)


def _json(
    status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(payload, status_code=status, media_type=_JSON, headers=headers)


class ResponseMetricsMiddleware:
    """Counts every response of the model endpoints by status code, with its latency.

    It sits outside the admission limit so that overload answers are counted too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = _runtime(scope) if scope["type"] == "http" else None
        if runtime is None:
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            runtime.metrics.response(endpoint, status, time.perf_counter() - started)


class AdmissionLimitMiddleware:
    """Answers 503 with Retry-After beyond a per-worker number of requests in flight.

    Queueing without bound would turn overload into timeouts for everyone; refusing early keeps
    latency bounded for the requests that are admitted and tells the client when to come back.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = _runtime(scope)
        if runtime is None:
            body = {"error": {"code": "not_ready", "message": "the model is still loading"}}
            await _json(503, body, {"Retry-After": "1"})(scope, receive, send)
            return
        if self.inflight >= runtime.max_inflight:
            runtime.metrics.overloaded()
            body = {"error": {"code": "overloaded", "message": "server at capacity; retry later"}}
            await _json(503, body, {"Retry-After": "1"})(scope, receive, send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, "body_too_large", f"the request body exceeds {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, "body_too_large", f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_media_type(request: Request) -> None:
    media_type = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
    if media_type != _JSON:
        raise ClientError(415, "unsupported_media_type", f"send {_JSON}, not {media_type}")


async def predict(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        _check_media_type(request)
        body = await _read_body(request, runtime.max_body_bytes)
        return _json(200, await runtime.predict(body))
    except ClientError as exc:
        return _json(exc.status, exc.body())


def _bearer(request: Request) -> str | None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else None


async def feedback(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        _check_media_type(request)
        body = await _read_body(request, runtime.max_body_bytes)
        credential = _bearer(request)
        return _json(200, await anyio.to_thread.run_sync(runtime.feedback, body, credential))
    except ClientError as exc:
        return _json(exc.status, exc.body(), exc.headers)
    except UnavailableError as exc:
        return _json(503, exc.body(), {"Retry-After": str(exc.retry_after_s)})


async def model(request: Request) -> Response:
    """What the served version takes and answers: clients and load generators shape their
    requests from it."""
    version = request.app.state.runtime.version
    return _json(200, orjson.dumps(version.summary()))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return _json(500, {"error": {"code": "internal", "message": "internal server error"}})


# Every route: path -> (method, handler); `mlcanary.serving.openapi` documents the same.
HANDLERS = {
    "/predict": ("POST", predict),
    "/feedback": ("POST", feedback),
    "/model": ("GET", model),
}


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route(path, handler, methods=[method]) for path, (method, handler) in HANDLERS.items()
        ],
        middleware=[Middleware(ResponseMetricsMiddleware), Middleware(AdmissionLimitMiddleware)],
        exception_handlers={Exception: _server_error},
    )
