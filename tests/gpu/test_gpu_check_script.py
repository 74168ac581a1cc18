"""scripts/gpu-check.sh, as far as a machine without a GPU can check it: the shell parses (and
is clean under shellcheck when it is installed), the dry runs list every step and the commands
--prepare would run, and the helpers that read its figures read real-shaped inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"
STEPS = ["env", "install", "gpu-tests", "train", "serve-gpu", "bench-gpu", "compare"]


def _script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GPU_CHECK_PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


def test_shellcheck_finds_nothing() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    run = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stdout


def test_the_dry_run_lists_every_step_with_its_limit_and_runs_nothing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = _script("--dry-run", str(results))
    assert run.returncode == 0, run.stderr
    listed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("step ")]
    assert listed == STEPS
    assert f"results: {results}" in run.stdout
    assert "(at most 120 s): python -m benchmarks.gpu_batch" in run.stdout
    assert not results.exists()


def test_the_results_folder_defaults_to_out(tmp_path: Path) -> None:
    env = os.environ | {"GPU_CHECK_PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    run = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert f"results: {tmp_path / 'out'} " in run.stdout


def test_prepare_downloads_everything_but_torch_for_both_pythons(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    env = os.environ | {"GPU_CHECK_PYTHON": sys.executable, "GPU_CHECK_WHEELS": str(wheels)}
    run = subprocess.run(
        ["bash", str(SCRIPT), "--prepare", "--dry-run"], env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    commands = [line.strip() for line in run.stdout.splitlines() if line.startswith("  ")]
    assert commands[0] == f"mkdir -p {wheels}"
    assert commands[1].endswith(f"pip wheel --no-deps --wheel-dir {wheels} {ROOT}")
    downloads = [c for c in commands if " pip download " in c]
    assert [c.split("--python-version ")[1].split()[0] for c in downloads] == ["3.11", "3.12"]
    for command in downloads:
        assert "[serve,bench]" in command
        assert "--only-binary=:all:" in command
        assert "torch" not in command.replace("safetensors", "")
    assert not wheels.exists()


METRICS = """\
# TYPE mlcanary_model_info gauge
mlcanary_model_info{{model="digits",version="v2",framework="torch",task="classification",\
device="{device}",sha256="ab"}} 1.0
{gauges}
"""
GAUGES = "\n".join(
    f'{name}{{gpu="0",model="digits",version="v2"}} 1.0'
    for name in (
        "mlcanary_gpu_utilization_ratio",
        "mlcanary_gpu_memory_used_bytes",
        "mlcanary_gpu_memory_total_bytes",
        "mlcanary_gpu_power_watts",
    )
)


@pytest.mark.parametrize(
    ("device", "gauges", "ok", "says"),
    [
        ("cuda:1", GAUGES, True, "device cuda:1 (expected cuda:1), GPU gauges 4/4"),
        ("cuda:0", GAUGES, False, "device cuda:0 (expected cuda:1)"),
        ("cuda:1", GAUGES.split("\n", 1)[1], False, "missing mlcanary_gpu_utilization_ratio"),
        ("cpu", "", False, "GPU gauges 0/4"),
    ],
)
def test_the_serving_check_needs_the_gauges_and_the_expected_gpu(
    tmp_path: Path, device: str, gauges: str, ok: bool, says: str
) -> None:
    metrics = tmp_path / "metrics.txt"
    metrics.write_text(METRICS.format(device=device, gauges=gauges))
    run = _script("--helper", "check-metrics", str(metrics), "cuda:1")
    assert (run.returncode == 0) is ok, run.stderr
    assert says in run.stdout


def test_the_figures_of_the_benchmark_and_the_comparison(tmp_path: Path) -> None:
    batch = tmp_path / "gpu_batch.json"
    batch.write_text(json.dumps({"crossover_batch": {"digits-cnn-v2": 64, "wide-mlp": 4}}))
    run = _script("--helper", "crossover", str(batch))
    assert run.stdout.strip() == "crossover batch digits-cnn-v2: 64, wide-mlp: 4"
    compare = tmp_path / "compare.json"
    sides = [
        {"label": "cpu", "capacity_rps": 400.0, "cost_per_million": 0.0694},
        {"label": "gpu", "capacity_rps": None, "cost_per_million": None},
    ]
    compare.write_text(json.dumps({"sides": sides}))
    run = _script("--helper", "compare", str(compare))
    assert run.stdout.strip() == "cpu: 400 req/s, 0.0694 per million; gpu: no capacity claimed"


def test_the_test_counts_come_from_pytests_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "gpu-tests.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="1" '
        'skipped="3" tests="12" time="4.2"></testsuite></testsuites>'
    )
    run = _script("--helper", "junit", str(report))
    assert run.returncode == 1
    assert run.stdout.strip() == "8 passed, 3 skipped, 1 failed"
