"""Gates asked over HTTP, against a real server on loopback: 2xx opens, anything else keeps the
gate closed and says why, and the body tells the endpoint which rollout asks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import yaml

from mlcanary.notify.gates import HttpGates
from mlcanary.rollout.spec import ModelRollout, parse_spec
from mlcanary.serving.launcher import free_port
from tests.rollout.support import SPEC


class _Gate(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        _Gate.bodies.append(json.loads(self.rfile.read(length)))
        if self.path == "/slow":
            time.sleep(2)
        status, text = {"/open": (200, "ok"), "/closed": (503, "change freeze\nuntil Monday")}.get(
            self.path, (404, "no such gate")
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gate_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _rollout(gates: list[dict[str, object]]) -> ModelRollout:
    document = yaml.safe_load(SPEC)
    document["spec"]["gates"] = gates
    return parse_spec(document)


def test_gates_open_on_2xx_and_say_why_they_stay_closed(gate_server: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}/gone"
    rollout = _rollout(
        [
            {"name": "qa", "url": f"{gate_server}/open", "before": "advance"},
            {"name": "freeze", "url": f"{gate_server}/closed"},
            {"name": "slow", "url": f"{gate_server}/slow", "timeout": "300ms"},
            {"name": "gone", "url": refused},
        ]
    )
    outcomes = HttpGates(rollout)(rollout.spec.gates)
    assert [(o.name, o.open) for o in outcomes] == [
        ("qa", True),
        ("freeze", False),
        ("slow", False),
        ("gone", False),
    ]
    assert outcomes[0].detail == "HTTP 200"
    assert outcomes[1].detail == "HTTP 503: change freeze until Monday"
    assert outcomes[2].detail.startswith("no answer: ")
    assert outcomes[3].detail.startswith("no answer: ")
    first = _Gate.bodies[0]
    assert first == {
        "rollout": "digits",
        "namespace": None,
        "model": "digits",
        "stable": "v1",
        "canary": "v2",
        "gate": "qa",
        "before": "advance",
    }
