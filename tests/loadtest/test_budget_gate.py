"""The locustfile's CI gate, through the plain ``locust`` command: the exit code says whether the
run stayed within its p95 and failure budgets, and the log says which budget broke."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import mlcanary.loadtest
from mlcanary.serving.launcher import free_port
from tests.loadtest.limited_target import limited_target

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "traffic" / "locustfile.py"


def locust(host: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "-u", "4", "-r", "4", "-t", "3s", "--only-summary", "--csv", str(tmp_path / "run"),
        *options,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def slow_target():
    """Every prediction takes 50 ms."""
    with limited_target(concurrency=8, service_ms=50) as target:
        yield target


def test_a_p95_over_budget_fails_the_run(slow_target, tmp_path: Path) -> None:
    run = locust(slow_target.url, tmp_path, "--p95-budget-ms", "10")
    assert run.returncode == 1, run.stderr[-2000:]
    assert "budget broken: p95" in run.stderr
    assert "exceeds the budget of 10 ms" in run.stderr


def test_a_generous_budget_passes_with_delayed_feedback_posted(slow_target, tmp_path: Path) -> None:
    run = locust(
        slow_target.url, tmp_path, "--p95-budget-ms", "2000", "--max-failure-ratio", "0.01",
        "--feedback-delay-s", "0.2",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "budget broken" not in run.stderr
    with (tmp_path / "run_stats.csv").open() as stats:
        counts = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(stats)}
    assert counts["/predict"] > 20
    # Each prediction gets its label 0.2 s later; those still pending at the stop are dropped.
    assert 0.5 * counts["/predict"] <= counts["/feedback"] <= counts["/predict"]


def test_a_failure_ratio_over_budget_fails_the_run(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    run = locust(closed, tmp_path, "--exit-code-on-error", "0", "--max-failure-ratio", "0.01")
    assert run.returncode == 1, run.stderr[-2000:]
    assert "budget broken: failure ratio 1.0000 exceeds the budget of 0.0100" in run.stderr


def test_an_option_out_of_range_is_named(slow_target, tmp_path: Path) -> None:
    run = locust(slow_target.url, tmp_path, "--feedback-ratio", "2")
    assert run.returncode != 0
    assert "--feedback-ratio must be within 0..1, got 2.0" in run.stderr
