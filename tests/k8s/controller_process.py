"""``mlcanary controller`` as its pod runs it: a process of the controller's module, against the
API double through a kubeconfig, probed over HTTP and stopped with signals; and a Prometheus
with no series, whose answer a test can hold back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from mlcanary.serving.launcher import free_port
from tests.k8s.cluster import NAMESPACE
from tests.k8s.scenarios import FAST_LEASE

# The scenarios' short leases, as the controller's flags.
FAST_LEASE_FLAGS = [
    f"--{setting.replace('_', '-')}={value:g}" for setting, value in FAST_LEASE.items()
]


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig file naming ``server`` and no credentials (the double asks for none)."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": server}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "nobody"}}],
        "current-context": "double",
    }
    path.write_text(yaml.safe_dump(document))
    return path


class _PrometheusHandler(BaseHTTPRequestHandler):
    server: _PrometheusServer

    def do_GET(self) -> None:
        stub = self.server.stub
        if stub.holding.is_set():
            stub.holding.clear()
            stub.held.set()
            stub.released.wait(timeout=30)
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _PrometheusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: PrometheusStub) -> None:
        super().__init__(("127.0.0.1", 0), _PrometheusHandler)
        self.stub = stub


class PrometheusStub:
    """Test double of Prometheus's query API with no series at all, so every rollout holds its
    step. After `hold`, the next query waits (``held`` is set) until `release`, as a slow
    server's answer would: a tick is then under way for as long as the test wants."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.held = threading.Event()
        self.released = threading.Event()
        self._server = _PrometheusServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold(self) -> None:
        self.released.clear()
        self.held.clear()
        self.holding.set()

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> PrometheusStub:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class ControllerProcess:
    identity: str
    process: subprocess.Popen[bytes]
    health_port: int
    log: Path

    def probe(self, path: str) -> tuple[int, str] | None:
        """(status, body) of a health endpoint; None while nothing answers there."""
        try:
            with httpx.Client(timeout=5) as client:
                response = client.get(f"http://127.0.0.1:{self.health_port}{path}")
        except httpx.TransportError:
            return None
        return response.status_code, response.text

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def controller_process(
    server: str, folder: Path, identity: str, *options: str
) -> Iterator[ControllerProcess]:
    """``mlcanary controller`` (what the rendered Deployment runs) for the
    namespace of the tests, named ``identity`` through ``$POD_NAME`` as in a pod; killed at
    the end of the block if it still runs."""
    folder.mkdir(parents=True, exist_ok=True)
    config = kubeconfig(folder / f"{identity}.kubeconfig", server)
    port = free_port()
    command = [
        sys.executable, "-m", "mlcanary.cli", "controller", "--namespace", NAMESPACE,
        "--kubeconfig", str(config), "--drain", "0",
        "--health-host", "127.0.0.1", "--health-port", str(port), *options,
    ]  # fmt: skip
    log = folder / f"{identity}.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            command, stdout=output, stderr=output, env={**os.environ, "POD_NAME": identity}
        ) as process,
    ):
        try:
            yield ControllerProcess(identity, process, port, log)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
