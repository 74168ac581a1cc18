"""The locustfile's CI gate, through the plain ``locust`` command: the exit code says whether the
run stayed within its p95 and failure budgets, and the log says which budget broke."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import mlcanary.loadtest
from mlcanary.loadtest.label_queue import CLOSED_LOOP_CAPACITY, LabelQueue, capacity_for
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


def test_a_long_label_delay_never_slows_the_predictions_and_drops_are_reported(
    slow_target, tmp_path: Path
) -> None:
    # Labels due in 60 s, room for 3 per user: a user that waited for room would stop after 3
    # predictions; instead it goes on and each label it has no room for is reported.
    run = locust(
        slow_target.url, tmp_path, "--feedback-delay-s", "60", "--max-pending-feedback", "3",
        "--exit-code-on-error", "0",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    with (tmp_path / "run_stats.csv").open() as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    predictions = int(rows["POST", "/predict"]["Request Count"])
    assert predictions > 4 * 3 * 2  # far more than the 12 the queues hold
    dropped = rows["DROPPED", "/feedback"]
    assert int(dropped["Failure Count"]) == predictions - 4 * 3
    assert ("POST", "/feedback") not in rows  # none fell due within the run


def test_the_label_queue_is_sized_from_rate_and_delay_and_hands_labels_out_when_due() -> None:
    assert capacity_for(rate_per_user=10, delay_s=30) == 600
    assert capacity_for(rate_per_user=0.01, delay_s=1) == 16
    assert capacity_for(rate_per_user=0, delay_s=30) == CLOSED_LOOP_CAPACITY
    queue = LabelQueue(capacity=2)
    assert queue.put(1.0, "a", 3)
    assert queue.put(2.0, "b", 4)
    assert not queue.put(3.0, "c", 5)
    assert (queue.dropped, len(queue), queue.next_due()) == (1, 2, 1.0)
    assert queue.take_due(1.5) == [("a", 3)]
    assert queue.take_due(5.0) == [("b", 4)]
    assert queue.next_due() is None
