"""The proxy's HTTP app: ``/predict`` by weight, ``/feedback`` by token, the admin API in ``/-/``.

The admin API has no authentication: whoever can reach it can move all traffic. That is why the
proxy listens on loopback only unless told otherwise (``--allow-remote-admin``), and why its
paths live under ``/-/``, a prefix no model service uses.

Requests are forwarded with one shared ``httpx.AsyncClient`` (pooled keep-alive connections,
bounded timeouts), so a backend that is down or stuck answers 502 or 504 within the timeout
instead of holding the client. Environment proxy settings are ignored: the backends are the
addresses in the table, not something to reach through another proxy. The backend's status, body,
content type and Retry-After (the services' overload answer) reach the client unchanged, plus
``X-Mlcanary-Version`` and ``X-Mlcanary-Generation``: which version answered and which table
chose it, so a client or a load test can check the split it received.

The metrics count forwarded requests by the version they went to; a request refused before any
version was chosen (unknown path, body too large) has no version and is not counted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import prometheus_client as prom
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as Endpoint

from mlcanary.local.router.admin import IF_GENERATION_HEADER, ROUTES_PATH
from mlcanary.local.router.state import ActiveRoutes, RouteState
from mlcanary.rollout.routers.base import Route, RouteTable, RouteTableError, StaleRoutesError
from mlcanary.serving.metrics import LATENCY_BUCKETS
from mlcanary.serving.tokens import peek_version

__all__ = ["GENERATION_HEADER", "VERSION_HEADER", "Proxy", "ProxyMetrics", "build_app"]

logger = logging.getLogger("mlcanary.router")

VERSION_HEADER = "X-Mlcanary-Version"
GENERATION_HEADER = "X-Mlcanary-Generation"
_JSON = "application/json"
_FORWARDED_RESPONSE_HEADERS = ("content-type", "retry-after")
_ADMIN_BODY_LIMIT = 64 * 1024


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers=headers)


def _error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return _json(status, {"error": error}, headers)


class _BodyTooLargeError(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


class ProxyMetrics:
    """The router's own metrics, in a private registry: one proxy app's counters never mix with
    another's in the same process, nor with a model service's."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "mlcanary_router_requests",
            "Forwarded requests by the version they went to, endpoint and status code.",
            ("version", "endpoint", "code"),
            registry=self.registry,
        )
        self.upstream_errors = prom.Counter(
            "mlcanary_router_upstream_errors",
            "Requests a version did not answer: connect, timeout or protocol.",
            ("version", "kind"),
            registry=self.registry,
        )
        self.weight = prom.Gauge(
            "mlcanary_router_weight",
            "Percent of new predictions routed to each version.",
            ("version",),
            registry=self.registry,
        )
        self.generation = prom.Gauge(
            "mlcanary_router_table_generation",
            "Generation of the route table in force.",
            registry=self.registry,
        )
        self.duration = prom.Histogram(
            "mlcanary_router_request_duration_seconds",
            "Time from the request to the backend's answer, through the proxy.",
            ("version", "endpoint"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._shown: set[str] = set()

    def show(self, table: RouteTable) -> None:
        """Weights of the table in force; versions no longer routed drop out of the gauge."""
        for version in self._shown - table.weights.keys():
            self.weight.remove(version)
        for version, weight in table.weights.items():
            self.weight.labels(version).set(weight)
        self._shown = set(table.weights)
        self.generation.set(table.generation)


class Proxy:
    def __init__(
        self,
        state: RouteState,
        *,
        upstream_timeout_s: float = 10.0,
        connect_timeout_s: float = 2.0,
        max_body_bytes: int = 8 * 1024 * 1024,
        max_connections: int = 256,
    ) -> None:
        self.state = state
        self.metrics = ProxyMetrics()
        self.metrics.show(state.active.table)
        self._timeout = httpx.Timeout(
            upstream_timeout_s, connect=min(connect_timeout_s, upstream_timeout_s)
        )
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._max_body_bytes = max_body_bytes
        self._client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            timeout=self._timeout, limits=self._limits, trust_env=False
        ) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    async def predict(self, request: Request) -> Response:
        active = self.state.active  # this request's table, whatever changes meanwhile
        try:
            body = await _read_body(request, self._max_body_bytes)
        except _BodyTooLargeError:
            return self._too_large()
        return await self._forward(request, active, active.pick(), "/predict", body)

    async def feedback(self, request: Request) -> Response:
        """To the version named in the token, even at weight 0; otherwise to the heaviest route,
        whose service verifies the token and counts it for its version, or answers the 4xx."""
        active = self.state.active
        try:
            body = await _read_body(request, self._max_body_bytes)
        except _BodyTooLargeError:
            return self._too_large()
        version = _token_version(body)
        route = active.table.route(version) if version is not None else None
        return await self._forward(request, active, route or active.heaviest(), "/feedback", body)

    async def _forward(
        self, request: Request, active: ActiveRoutes, route: Route, endpoint: str, body: bytes
    ) -> Response:
        if self._client is None:
            raise RuntimeError("the proxy's HTTP client is not started (lifespan not run)")
        started = time.perf_counter()
        headers = {VERSION_HEADER: route.version, GENERATION_HEADER: str(active.table.generation)}
        content_type = request.headers.get("content-type")
        outgoing = {"content-type": content_type} if content_type is not None else {}
        try:
            upstream = await self._client.post(
                f"{route.url.rstrip('/')}{endpoint}", content=body, headers=outgoing
            )
        except httpx.TimeoutException:
            response = self._upstream_failed(route, "timeout", 504, headers)
        except httpx.ConnectError:
            response = self._upstream_failed(route, "connect", 502, headers)
        except httpx.HTTPError:
            response = self._upstream_failed(route, "protocol", 502, headers)
        else:
            for name in _FORWARDED_RESPONSE_HEADERS:
                if name in upstream.headers:
                    headers[name] = upstream.headers[name]
            response = Response(upstream.content, status_code=upstream.status_code, headers=headers)
        self.metrics.requests.labels(route.version, endpoint, str(response.status_code)).inc()
        self.metrics.duration.labels(route.version, endpoint).observe(time.perf_counter() - started)
        return response

    def _upstream_failed(
        self, route: Route, kind: str, status: int, headers: dict[str, str]
    ) -> Response:
        self.metrics.upstream_errors.labels(route.version, kind).inc()
        logger.warning("%s at %s: upstream %s error", route.version, route.url, kind)
        code = "upstream_timeout" if kind == "timeout" else "upstream_unavailable"
        message = f"version {route.version} did not answer ({kind} error)"
        return _error(status, code, message, headers=headers)

    def _too_large(self) -> Response:
        return _error(
            413, "body_too_large", f"the request body exceeds {self._max_body_bytes} bytes"
        )

    async def get_routes(self, request: Request) -> Response:
        return _json(200, self.state.active.table.to_json())

    async def put_routes(self, request: Request) -> Response:
        try:
            document = orjson.loads(await _read_body(request, _ADMIN_BODY_LIMIT))
        except _BodyTooLargeError:
            return _error(413, "body_too_large", f"a table is at most {_ADMIN_BODY_LIMIT} bytes")
        except orjson.JSONDecodeError as exc:
            return _error(400, "invalid_json", f"the body is not JSON: {exc}")
        precondition = request.headers.get(IF_GENERATION_HEADER)
        try:
            if precondition is not None and not precondition.isdigit():
                raise RouteTableError("generation", f"{IF_GENERATION_HEADER} must be a number")
            table = await self.state.replace(
                RouteTable.from_json(document),
                if_generation=None if precondition is None else int(precondition),
            )
        except RouteTableError as exc:
            return _error(422, "invalid_routes", exc.message, exc.field)
        except StaleRoutesError as exc:
            return _error(412, "stale_routes", str(exc), "generation")
        except OSError as exc:
            logger.exception("could not save the route table to %s", self.state.path)
            return _error(
                500, "state_not_saved", f"the table was not applied: cannot save it: {exc}"
            )
        self.metrics.show(table)
        return _json(200, table.to_json())

    async def livez(self, request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self._client is None:
            return _error(503, "not_ready", "the proxy is starting or stopping")
        return _json(200, {"status": "ready", "generation": self.state.active.table.generation})

    async def metrics_text(self, request: Request) -> Response:
        return Response(
            prom.generate_latest(self.metrics.registry), media_type=prom.CONTENT_TYPE_LATEST
        )


def _token_version(body: bytes) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    token = document.get("token") if isinstance(document, dict) else None
    return peek_version(token) if isinstance(token, str) else None


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _error(404, "not_found", f"no such path: {request.url.path}")
    if status == 405:
        return _error(405, "method_not_allowed", f"{request.method} is not allowed here")
    return _error(status, "http_error", str(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return _error(500, "internal", "internal proxy error")


def build_app(proxy: Proxy) -> Starlette:
    return Starlette(
        routes=[
            Endpoint("/predict", proxy.predict, methods=["POST"]),
            Endpoint("/feedback", proxy.feedback, methods=["POST"]),
            Endpoint(ROUTES_PATH, proxy.get_routes, methods=["GET"]),
            Endpoint(ROUTES_PATH, proxy.put_routes, methods=["PUT"]),
            Endpoint("/-/livez", proxy.livez, methods=["GET"]),
            Endpoint("/-/readyz", proxy.readyz, methods=["GET"]),
            Endpoint("/-/metrics", proxy.metrics_text, methods=["GET"]),
        ],
        lifespan=proxy.lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
