"""The ``local`` router's entry in the router registry: its rules on a spec.

It listens where ``spec.router.address`` says (``http://127.0.0.1:8080`` when unset), and only
on loopback with an explicit port: the single-machine platform serves this machine, its data
port has no authentication, and the platform must know the port before it starts anything.
Checked with the rest of the spec, so that a bad address is refused before any process starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mlcanary.rollout.spec import RolloutSpec

__all__ = ["DEFAULT_ADDRESS", "ROUTER", "LocalRouterKind", "loopback_port"]

DEFAULT_ADDRESS = "http://127.0.0.1:8080"
_LOOPBACK = frozenset({"127.0.0.1", "localhost"})


def loopback_port(url: str) -> int:
    """The port of a loopback ``http://HOST:PORT`` address; ValueError naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid address: {exc}") from None
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        raise ValueError(f"{url!r} is not on loopback: use http://127.0.0.1:PORT")
    if port is None or port == 0:
        raise ValueError(f"{url!r} has no port: use http://127.0.0.1:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r} must be a bare address, without a path or query")
    return port


@dataclass(frozen=True)
class LocalRouterKind:
    name: str = "local"

    def spec_problems(self, spec: RolloutSpec) -> list[tuple[str, str]]:
        try:
            loopback_port(spec.router.address or DEFAULT_ADDRESS)
        except ValueError as exc:
            return [("spec.router.address", str(exc))]
        return []


ROUTER = LocalRouterKind()
