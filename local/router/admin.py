"""The router of the single-machine mode: the local weighted proxy, through its admin API.

The proxy is its own process so that traffic keeps flowing while the controller is stopped or
restarted; this adapter is how the controller reads and replaces its table
(``GET``/``PUT /-/routes``). Every call opens one short-lived connection: the controller calls
once per tick and the proxy may have restarted in between, so a pooled connection would more
often be stale than useful. Environment proxy settings are ignored because the admin API is on
loopback.
"""

from __future__ import annotations

from typing import Any

import httpx

from mlcanary.rollout.routers.base import (
    RouterUnavailableError,
    RouteTable,
    RouteTableError,
    StaleRoutesError,
)

__all__ = ["DEFAULT_ADMIN_URL", "IF_GENERATION_HEADER", "ROUTES_PATH", "LocalRouter"]

DEFAULT_ADMIN_URL = "http://127.0.0.1:8080"
ROUTES_PATH = "/-/routes"
# A PUT carrying it applies only over that generation (412 otherwise), like If-Match on an ETag.
IF_GENERATION_HEADER = "X-Mlcanary-If-Generation"
_HTTP_OK = 200
_PRECONDITION_FAILED = 412
_UNPROCESSABLE = 422


class LocalRouter:
    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL, timeout_s: float = 5.0) -> None:
        if not admin_url.startswith(("http://", "https://")):
            raise ValueError(f"the router admin URL must start with http://, not {admin_url!r}")
        self.admin_url = admin_url.rstrip("/")
        self._timeout_s = timeout_s

    def routes(self) -> RouteTable:
        return self._exchange("GET", None)

    def set_routes(self, table: RouteTable, if_generation: int | None = None) -> RouteTable:
        """Raises RouteTableError when the proxy refuses the table (for example a URL that is
        not http://), RouterUnavailableError when it cannot be asked, and StaleRoutesError when
        ``if_generation`` is given and the proxy's table has moved on from it."""
        headers = {} if if_generation is None else {IF_GENERATION_HEADER: str(if_generation)}
        return self._exchange("PUT", table.to_json(), headers)

    def _exchange(
        self, method: str, document: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> RouteTable:
        where = f"the router at {self.admin_url}"
        try:
            with httpx.Client(timeout=self._timeout_s, trust_env=False) as client:
                response = client.request(
                    method, f"{self.admin_url}{ROUTES_PATH}", json=document, headers=headers
                )
        except httpx.TimeoutException as exc:
            raise RouterUnavailableError(
                f"{where} did not answer within {self._timeout_s:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise RouterUnavailableError(f"cannot reach {where}: {exc}") from exc
        if response.status_code == _UNPROCESSABLE:
            raise _refusal(response)
        if response.status_code == _PRECONDITION_FAILED and headers:
            current = self.routes().generation
            raise StaleRoutesError(int(headers[IF_GENERATION_HEADER]), current)
        if response.status_code != _HTTP_OK:
            raise RouterUnavailableError(
                f"{where} answered {method} {ROUTES_PATH} with {response.status_code}: "
                f"{response.text[:200]}"
            )
        try:
            return RouteTable.from_json(response.json())
        except ValueError as exc:
            raise RouterUnavailableError(
                f"{where} answered with something that is not a route table: {exc}"
            ) from exc


def _refusal(response: httpx.Response) -> RouteTableError:
    """The proxy's 422 body, ``{"error": {"field": ..., "message": ...}}``, as the same error."""
    try:
        error = response.json()["error"]
        return RouteTableError(str(error["field"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return RouteTableError("$", f"refused by the router: {response.text[:200]}")
