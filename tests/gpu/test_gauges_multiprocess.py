"""The gauges as BentoML serves them: written by worker processes in Prometheus' multiprocess
mode and merged into one page, one series per GPU whichever worker sampled last."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess

WORKER = """
import sys
from mlcanary.gpu import nvml
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml
used = int(sys.argv[1])
nvml.load_library = lambda: FakeNvml([FakeDevice(memory_used=used)])
from mlcanary.serving.gpu_metrics import start_gpu_sampler
start_gpu_sampler("digits", "v2", 3600).close()
"""


def test_two_workers_give_one_series_with_the_latest_sample(tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": ""}
    for used in (111, 222):
        subprocess.run([sys.executable, "-c", WORKER, str(used)], env=env, check=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    samples = [
        sample
        for family in registry.collect()
        if family.name == "mlcanary_gpu_memory_used_bytes"
        for sample in family.samples
    ]
    assert [(s.labels, s.value) for s in samples] == [
        ({"model": "digits", "version": "v2", "gpu": "0"}, 222.0)
    ]
