"""The single-machine demo: real BentoML servers, real Locust traffic, metrics read back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

import mlcanary.loadtest
from mlcanary.models.registry import ModelRef, get_version
from mlcanary.models.train import train_reference_versions
from mlcanary.serving.launcher import ServeOptions, free_port, running_server
from mlcanary.serving.scrape import VersionTotals, parse_metrics

__all__ = ["run_demo"]

DEMO_VERSIONS = ("digits:v1", "digits:v3")
LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "locustfile.py"


def _locust(url: str, duration_s: int, users: int, csv_prefix: Path) -> int:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", url, "-u", str(users), "-r", str(users), "-t", f"{duration_s}s",
        "--only-summary", "--csv", str(csv_prefix), "--loglevel", "WARNING",
    ]  # fmt: skip
    return subprocess.run(command, check=False, timeout=duration_s + 120).returncode


def run_demo(duration_s: int, users: int, workdir: Path, console: Console) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    console.rule("1. train the reference versions")
    for outcome in train_reference_versions():
        v = outcome.version
        console.print(f"{v.ref}: {v.description}, holdout accuracy {v.holdout_accuracy:.4f}")
    results: dict[str, VersionTotals] = {}
    exit_code = 0
    for ref_text in DEMO_VERSIONS:
        ref = ModelRef.parse(ref_text)
        port = free_port()
        console.rule(f"2. serve {ref} on 127.0.0.1:{port} and send it labeled traffic")
        log = workdir / f"serve-{ref.version}.log"
        with running_server(ServeOptions(model=str(ref), port=port), log) as url:
            code = _locust(url, duration_s, users, workdir / f"locust-{ref.version}")
            if code != 0:
                console.print(f"[yellow]locust reported failed requests (exit {code})[/]")
                exit_code = 1
            scraped = parse_metrics(httpx.get(f"{url}/metrics", timeout=10).text)
        results[str(ref)] = scraped.get(ref.version, VersionTotals())
    console.rule("3. what Prometheus would see, per version")
    table = Table(
        "version", "predictions", "feedback", "accuracy (served)", "accuracy (holdout)",
        "p50 ms", "p95 ms", "responses",
    )  # fmt: skip
    for ref_text, totals in results.items():
        labeled = totals.feedback_correct + totals.feedback_incorrect
        table.add_row(
            ref_text,
            f"{totals.predictions:.0f}",
            f"{labeled:.0f}",
            f"{totals.accuracy:.4f}",
            f"{get_version(ModelRef.parse(ref_text)).holdout_accuracy:.4f}",
            f"{totals.latency_quantile(0.5) * 1000:.1f}",
            f"{totals.latency_quantile(0.95) * 1000:.1f}",
            ", ".join(f"{code}: {n:.0f}" for code, n in sorted(totals.responses_by_code.items())),
        )
    console.print(table)
    console.print(f"logs and Locust CSVs are in {workdir}/")
    return exit_code
