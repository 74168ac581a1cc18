"""Starts ``bentoml serve`` for one model version, checking first what would fail inside it.

Errors found here (unknown version, tampered artifact, busy port) reach the user as one clear
line instead of a worker traceback in BentoML's logs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlcanary.models.digest import verify_sha256
from mlcanary.models.registry import ModelRef, get_version
from mlcanary.settings import ServingSettings, env_name

__all__ = [
    "ServeOptions",
    "ServerStartError",
    "free_port",
    "port_is_free",
    "preflight",
    "running_server",
    "serve_command",
    "serve_environment",
    "spawn_server",
    "stop_server",
    "wait_ready",
]


@dataclass(frozen=True)
class ServeOptions:
    model: str
    port: int
    host: str = "127.0.0.1"
    workers: int = 1
    device: str = "auto"
    env: Mapping[str, str] = field(default_factory=dict)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out, so very likely still free when the server binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve_environment(options: ServeOptions, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(options.env)
    env.update(
        {
            env_name("model"): options.model,
            env_name("workers"): str(options.workers),
            env_name("device"): options.device,
        }
    )
    return env


def serve_command(options: ServeOptions) -> list[str]:
    return [
        sys.executable, "-m", "mlcanary.serving.entrypoint",
        "--host", options.host, "--port", str(options.port),
    ]  # fmt: skip


def preflight(options: ServeOptions, env: dict[str, str]) -> None:
    """Raise ValueError or LookupError naming the problem before any process starts."""
    ref = ModelRef.parse(options.model)
    version = get_version(ref)
    verify_sha256(version.artifact, version.digest)
    if not 1 <= options.port <= 65535:
        raise ValueError(f"port {options.port} is outside 1..65535")
    if not port_is_free(options.host, options.port):
        raise ValueError(f"port {options.port} on {options.host} is already in use")
    _ = ServingSettings.from_env(env).feedback_key


def spawn_server(options: ServeOptions, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, so that stopping it stops its workers too."""
    env = serve_environment(options)
    preflight(options, env)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else None
        return subprocess.Popen(
            serve_command(options),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )


class ServerStartError(RuntimeError):
    """The server exited, or did not become ready in time; the message carries its log's tail."""


def _log_tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, log: Path | None = None
) -> None:
    """Poll /readyz until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"server for {url} exited with code {process.returncode}\n{_log_tail(log)}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_server(process)
    raise ServerStartError(
        f"server for {url} was not ready after {timeout_s:.0f}s\n{_log_tail(log)}"
    )


def stop_server(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process group (arbiter and workers), SIGKILL what is left after the grace."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running_server(
    options: ServeOptions, log: Path | None = None, timeout_s: float = 180.0
) -> Iterator[str]:
    """A started, ready server for the block's duration; its base URL is yielded."""
    process = spawn_server(options, log)
    url = f"http://{options.host}:{options.port}"
    try:
        wait_ready(process, url, timeout_s, log)
        yield url
    finally:
        stop_server(process)
