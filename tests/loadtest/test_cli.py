"""``mlcanary bench``: bad input named by its option, the rollout check's exit codes, and a real
comparison of two limited targets with their cost per million requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlcanary.rollout
from mlcanary.loadtest.cli import bench_app
from mlcanary.serving.launcher import free_port
from tests.loadtest.limited_target import limited_target

SPEC = Path(mlcanary.rollout.__file__).parent / "examples" / "better-canary.yaml"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(bench_app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def capacity_report(tmp_path: Path) -> Path:
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps({"status": "found", "capacity_rps": 30.0}))
    return path


@pytest.mark.parametrize(
    ("current_rps", "code", "expected"),
    [
        ("25", 0, "every step of digits-v2 fits"),
        ("100", 1, "step 100%: canary v2 would get 100.0 req/s"),
        ("1000", 1, "step 10%: canary v2 would get 100.0 req/s"),
    ],
)
def test_check_rollout(capacity_report: Path, current_rps, code, expected) -> None:
    exit_code, output = invoke(
        "check-rollout", "-f", str(SPEC), "--capacity", str(capacity_report),
        "--current-rps", current_rps,
    )  # fmt: skip
    assert exit_code == code, output
    assert expected in " ".join(output.split())


def test_check_rollout_refuses_a_bad_spec(tmp_path: Path, capacity_report: Path) -> None:
    spec = tmp_path / "rollout.yaml"
    spec.write_text(SPEC.read_text().replace("steps: [10, 100]", "steps: [10, 50]"))
    code, output = invoke(
        "check-rollout", "-f", str(spec), "--capacity", str(capacity_report), "--current-rps", "5"
    )
    assert code == 2
    assert "spec.steps: must end at 100" in " ".join(output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["capacity", "--url", "URL", "--slo-p95-ms", "0"], "--slo-p95-ms/--error-budget"),
        (["capacity", "--url", "URL", "--slo-p95-ms", "50", "--feedback-ratio", "3"],
         "--feedback-ratio must be within 0..1"),
        (["capacity", "--url", "URL", "--slo-p95-ms", "50"], "--url: cannot reach"),
        (["compare", "--a", "URL", "--b", "URL", "--slo-p95-ms", "50"],
         "--price-a and --price-b (or --prices FILE) are required"),
        (["compare", "--a", "URL", "--b", "URL", "--slo-p95-ms", "50", "--price-a", "1",
          "--price-b", "-2"], "--price-b must be >= 0"),
        (["compare", "--a", "URL", "--b", "URL", "--slo-p95-ms", "50", "--label-a", "x",
          "--label-b", "x"], "--label-a and --label-b must differ"),
    ],
)  # fmt: skip
def test_bad_input_is_named(args: list[str], message: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    code, output = invoke(*(closed if a == "URL" else a for a in args))
    assert code == 2, output
    assert message in " ".join(output.split())


@pytest.mark.integration
def test_compare_two_targets_with_a_price_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("slow: 0.10\nfast: 2.50\n")
    with (
        limited_target(concurrency=1, service_ms=20) as slow,
        limited_target(concurrency=4, service_ms=5) as fast,
    ):
        command = [
            sys.executable, "-m", "mlcanary.loadtest.cli", "compare", "--a", slow.url,
            "--b", fast.url, "--label-a", "slow", "--label-b", "fast", "--prices", str(prices),
            "--slo-p95-ms", "100", "--start-rps", "10", "--max-rps", "20", "--window-s", "1",
            "--max-hold-s", "6", "--out", str(tmp_path / "out"),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    document = json.loads((tmp_path / "out" / "compare.json").read_text())
    slow_side, fast_side = document["sides"]
    for side, price in ((slow_side, 0.10), (fast_side, 2.50)):
        assert side["status"] == "at_least"  # both serve the 20 req/s maximum within 100 ms
        assert side["capacity_rps"] == pytest.approx(20, rel=0.1)
        assert side["cost_per_million"] == pytest.approx(
            price / (side["capacity_rps"] * 3600) * 1e6
        )
        assert (tmp_path / "out" / side["label"] / "capacity.json").exists()
    assert "| cost per million requests |" in (tmp_path / "out" / "compare.md").read_text()
    assert (tmp_path / "out" / "compare.png").stat().st_size > 10_000
