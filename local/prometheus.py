"""A real Prometheus server for the single-machine platform, when the binary is installed.

Scrape targets are a file-based service discovery file that Prometheus watches, so switching the
canary or promoting it needs no restart. The scrape interval is short (1 s by default) because
the controller reads cumulative counters: the interval only delays when data shows up.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from mlcanary.local.file_store import atomic_write
from mlcanary.local.processes import ManagedProcess, ProcessRegistry

__all__ = ["PROMETHEUS_BINARY", "prometheus_available", "start_prometheus", "write_targets"]

PROMETHEUS_BINARY = "prometheus"
NAME = "prometheus"


def prometheus_available() -> bool:
    return shutil.which(PROMETHEUS_BINARY) is not None


def write_targets(directory: Path, jobs: Mapping[str, Sequence[str]]) -> None:
    """One file per job (its metrics path differs): ``{job: ["127.0.0.1:port", ...]}``."""
    for job, targets in jobs.items():
        groups = [{"targets": list(targets), "labels": {"job": job}}]
        atomic_write(directory / f"targets-{job}.json", json.dumps(groups).encode())


def _config(directory: Path, interval_s: float, metrics_paths: Mapping[str, str]) -> str:
    jobs = [
        {
            "job_name": job,
            "metrics_path": path,
            "scrape_interval": f"{interval_s:g}s",
            "file_sd_configs": [
                {"files": [str(directory / f"targets-{job}.json")], "refresh_interval": "5s"}
            ],
        }
        for job, path in metrics_paths.items()
    ]
    return yaml.safe_dump(
        {"global": {"scrape_interval": f"{interval_s:g}s"}, "scrape_configs": jobs}
    )


def start_prometheus(
    registry: ProcessRegistry,
    directory: Path,
    port: int,
    metrics_paths: Mapping[str, str],
    interval_s: float = 1.0,
) -> ManagedProcess:
    """Start (or find running) Prometheus on 127.0.0.1:port with one job per metrics path."""
    # Prometheus resolves relative paths in its config against the config file's directory.
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    atomic_write(config, _config(directory, interval_s, metrics_paths).encode())
    for job in metrics_paths:
        target_file = directory / f"targets-{job}.json"
        if not target_file.exists():
            write_targets(directory, {job: []})
    command = [
        PROMETHEUS_BINARY,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    return registry.ensure(NAME, command, f"http://127.0.0.1:{port}", "/-/ready", timeout_s=60)
