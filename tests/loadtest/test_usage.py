"""Utilization probes against real sources: a loopback ``/metrics`` endpoint and real processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mlcanary.gpu import nvml
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml
from mlcanary.loadtest.usage.metrics_endpoint import MetricsEndpointCpu, MetricsEndpointGpu
from mlcanary.loadtest.usage.nvml import NvmlGpu
from mlcanary.loadtest.usage.process_cpu import ProcessTreeCpu


class _Metrics(BaseHTTPRequestHandler):
    """Two worker processes whose CPU counters advance by 0.5 s and 0.25 s at every scrape."""

    scrapes = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        n = type(self).scrapes
        body = (
            "# TYPE process_cpu_seconds_total counter\n"
            f'process_cpu_seconds_total{{worker="1"}} {0.5 * n}\n'
            f'process_cpu_seconds_total{{worker="2"}} {0.25 * n}\n'
            "# TYPE mlcanary_gpu_utilization_ratio gauge\n"
            'mlcanary_gpu_utilization_ratio{gpu="0"} 0.5\n'
            'mlcanary_gpu_utilization_ratio{gpu="1"} 0.7\n'
        ).encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cpu_from_the_targets_counters(metrics_url: str) -> None:
    with httpx.Client() as client:
        probe = MetricsEndpointCpu(metrics_url, client)
        assert probe.sample() is None  # the first sample only starts the clock
        time.sleep(0.2)
        busy = probe.sample()
    # 0.75 s of CPU over both workers within about 0.2 s of wall time: several cores' worth.
    assert busy is not None
    assert busy > 100


def test_gpu_from_the_targets_gauge(metrics_url: str) -> None:
    with httpx.Client() as client:
        assert MetricsEndpointGpu(metrics_url, client).sample() == pytest.approx(60.0)


def test_a_target_without_metrics_gives_none() -> None:
    with httpx.Client() as client:
        assert MetricsEndpointCpu("http://127.0.0.1:9", client).sample() is None
        assert MetricsEndpointGpu("http://127.0.0.1:9", client).sample() is None


def test_a_busy_child_counts_in_its_parents_tree() -> None:
    spin = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}])",
        ]
    )
    try:
        probe = ProcessTreeCpu(parent.pid)
        time.sleep(0.3)
        assert probe.sample_tree() is None
        time.sleep(1.0)
        tree = probe.sample_tree()
    finally:
        parent.wait(10)
    assert tree is not None
    assert tree.processes == 2
    assert tree.busiest_pct > 20  # the spinning child, even on a busy machine
    assert tree.total_pct >= tree.busiest_pct


def test_nvml_reads_the_gpus_or_says_there_are_none() -> None:
    gpu = NvmlGpu()
    try:
        if gpu.available:
            value = gpu.sample()
            assert value is not None
            assert 0 <= value <= 100
        else:
            assert gpu.reason.startswith("no GPU")
            assert gpu.sample() is None
    finally:
        gpu.close()


def test_nvml_utilization_is_the_mean_over_devices_in_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    devices = [FakeDevice(utilization_percent=30), FakeDevice(utilization_percent=None)]
    devices.append(FakeDevice(utilization_percent=90))
    monkeypatch.setattr(nvml, "load_library", lambda: FakeNvml(devices))
    gpu = NvmlGpu()
    try:
        assert gpu.available
        assert gpu.sample() == pytest.approx(60.0)
    finally:
        gpu.close()
    assert gpu.sample() is None
