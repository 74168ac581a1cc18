"""HAProxy as the local router's data plane: its configuration, rendered from the route table.

Why HAProxy rather than a proxy of our own: a Python reverse proxy in front of a service kept
about a fifth of its throughput and added tens of milliseconds at the median, where HAProxy
keeps it whole; and HAProxy changes server weights live through its runtime API, without
dropping a connection.

The configuration is rendered from the persisted table each time the router starts, so a
restarted HAProxy serves the weights the controller last persisted; between starts, weights and
servers change through the runtime API (`runtime`), never by editing this file. What is rendered:

- one server per routed version, named after the version, so that the response header
  ``X-Mlcanary-Version`` (``%[srv_name]``) and the exporter's ``server`` label name the version;
- ``balance roundrobin``: HAProxy's weighted round-robin spreads a version's share smoothly (a
  10% canary gets every tenth request), and its weights can change at run time;
- ``/predict`` and ``/feedback`` in two backends with the same servers and weights, so that the
  router's metrics tell predictions from feedback. Any version's service counts a feedback token
  for the version it names (signed with the model's shared secret, claimed in a ledger shared by
  every service of the machine), so feedback needs no routing of its own; following the weights
  means a version at weight 0 gets no new work of any kind while it drains;
- a version whose process died is taken out at the first refused connection, and the request
  retried on another version (``observe layer4``, ``retry-on conn-failure empty-response``,
  ``option redispatch``); a TCP check every second brings it back when it listens again. So
  while another version has weight no request is lost, and when none has, the client gets a
  503 at once, never a hang. Readiness is not HAProxy's to check: the platform routes to a
  service only once its ``/readyz`` answered;
- errors as JSON ``{"error": {"code", "message"}}``, like the services' own;
- ``/-/readyz`` answered by HAProxy itself (the process registry's health check) and
  ``/-/metrics`` by its built-in Prometheus exporter; ``/-/`` is a prefix no model service uses;
- no ``SO_REUSEPORT``: a second router started on the same port fails instead of silently
  taking a share of the connections with its own weights;
- the runtime API on a unix socket (mode 0600) in the router's own directory (mode 0700): only
  the user running the platform can change the weights, and nothing on the network can.
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlcanary.rollout.routers.base import Route, RouteTable, RouteTableError

__all__ = [
    "BACKENDS",
    "HAPROXY_BINARY",
    "MISSING_HAPROXY",
    "RouterSettings",
    "haproxy_binary",
    "render_config",
    "server_address",
    "server_options",
]

HAPROXY_BINARY = "haproxy"
MISSING_HAPROXY = (
    f"{HAPROXY_BINARY} is not installed; the local router runs it: apt-get install haproxy"
)
# The backend of each path the router forwards; both hold the same servers and weights.
BACKENDS = {"/predict": "predict", "/feedback": "feedback"}
# Paths that share a backend: /model (what a version takes, which load generators shape their
# rows from) goes by the feedback backend's weights, so the predict backend counts predictions
# only.
ROUTED = {**BACKENDS, "/model": "feedback"}
# Idle connections to a version are kept for reuse; a version is checked every second (a TCP
# connect) and taken out at its first refused connection, until a check finds it again. Servers
# added at run time take no defaults, so every server is given these explicitly.
_OPTIONS = (
    "pool-max-conn -1 pool-purge-delay 5s "
    "check inter 1s fall 1 rise 1 observe layer4 error-limit 1 on-error mark-down"
)


def haproxy_binary() -> str | None:
    return shutil.which(HAPROXY_BINARY)


def server_address(route: Route) -> tuple[str, int]:
    """The IP address and port HAProxy connects to for ``route``; RouteTableError otherwise.

    An IP literal, because a server added through the runtime API is not resolved by name; a
    bare base URL, because HAProxy forwards the request's own path unchanged.
    """
    try:
        parts = urlsplit(route.url)
        port = parts.port
        host = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        port, host = None, None
    if (
        parts.scheme != "http"
        or host is None
        or not port
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise RouteTableError(
            "url", f"must be http://IP:PORT, such as http://127.0.0.1:3000, not {route.url!r}"
        )
    return str(host), port


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def server_options(route: Route) -> str:
    """What follows a server's name, in the file and in the runtime API's ``add server``."""
    host, port = server_address(route)
    return f"{_bracketed(host)}:{port} weight {route.weight} {_OPTIONS}"


@dataclass(frozen=True)
class RouterSettings:
    """Where the router listens and how long a version has to answer."""

    host: str
    port: int
    upstream_timeout_s: float = 10.0
    connect_timeout_s: float = 2.0


def _ms(seconds: float) -> str:
    """HAProxy's time format takes whole numbers only."""
    return f"{max(round(seconds * 1000), 1)}ms"


def _error(status: int, code: str, message: str) -> str:
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'.replace('"', '\\"')
    return f'    http-error status {status} content-type application/json string "{body}"'


def render_config(table: RouteTable, settings: RouterSettings, admin_socket: str) -> str:
    """The whole configuration for ``table``; RouteTableError naming the route it cannot use."""
    servers = []
    for index, route in enumerate(table.routes):
        try:
            servers.append(f"    server {route.version} {server_options(route)}")
        except RouteTableError as exc:
            raise exc.within(f"routes[{index}]") from None
    backends = "\n\n".join(
        f"backend {name}\n    balance roundrobin\n" + "\n".join(servers)
        for name in BACKENDS.values()
    )
    paths = " ".join(ROUTED)
    routing = "\n".join(
        f"    use_backend {name} if {{ path {path} }}" for path, name in ROUTED.items()
    )
    return f"""\
# Rendered by `mlcanary router serve` from the route table of generation {table.generation}.
# Changes made here are lost at the next start: the route table is the truth.
global
    noreuseport
    stats socket {admin_socket} mode 600 level admin
    stats timeout 10s
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect {_ms(settings.connect_timeout_s)}
    timeout server {_ms(settings.upstream_timeout_s)}
    timeout client 60s
    timeout http-request 10s
    timeout http-keep-alive 60s
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
{_error(502, "upstream_unavailable", "the version chosen did not answer properly")}
{_error(503, "no_version_available", "no routed version could take the request")}
{_error(504, "upstream_timeout", "the version chosen did not answer in time")}

frontend router
    bind {_bracketed(settings.host)}:{settings.port}
    http-request return status 200 content-type application/json string "{{\\"status\\":\\"ready\\"}}" if {{ path /-/readyz }}
    http-request use-service prometheus-exporter if {{ path /-/metrics }}
    http-request return status 404 content-type application/json string "{{\\"error\\":{{\\"code\\":\\"not_found\\",\\"message\\":\\"the router serves {paths}\\"}}}}" unless {{ path {paths} }}
{routing}
    http-after-response set-header X-Mlcanary-Version %[srv_name] if {{ srv_name -m found }}

{backends}
"""  # noqa: E501
