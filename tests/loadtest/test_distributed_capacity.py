"""The capacity search on Locust's distributed mode: a master driven by ``bench capacity
--workers 2`` and two worker processes on loopback, against a target whose capacity is known by
construction; measured side by side with the local search in the same test, the two must agree
within the tolerance that two local searches are held to (15% of the larger,
test_capacity_search.py), and both lie within 0.70..1.02 of the theoretical capacity.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from mlcanary.loadtest.level import GeneratorLoad, LevelResult
from mlcanary.loadtest.level_runner_distributed import LocustMaster, _MasterLevel
from mlcanary.loadtest.level_runner_locust import LOCUSTFILE, Round, read_rounds
from mlcanary.loadtest.verdict import Objective, judge
from mlcanary.loadtest.window import Window
from mlcanary.loadtest.window_files import store_worker_window
from mlcanary.serving.launcher import free_port
from tests.loadtest.limited_target import limited_target
from tests.loadtest.test_capacity_search import FAST_LEVELS, capacity

SEARCH = ["--slo-p95-ms", "100", "--start-rps", "40", *FAST_LEVELS]


def _distributed_capacity(url: str, out: Path, pid: int) -> tuple[int, dict[str, Any], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "mlcanary.loadtest.cli", "capacity", "--url", url,
        "--out", str(out), "--server-pid", str(pid), *SEARCH,
        "--workers", "2", "--master-port", str(port), "--worker-wait-s", "60",
    ]  # fmt: skip
    search = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    worker = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
              "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    workers = [
        subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        output, _ = search.communicate(timeout=500)
    finally:
        search.kill()
        for process in workers:
            process.terminate()
            process.wait(20)
    report = out / "capacity.json"
    document = json.loads(report.read_text()) if report.exists() else {}
    return search.returncode, document, output.decode(errors="replace")


@pytest.mark.integration
def test_distributed_search_finds_the_local_capacity(tmp_path: Path) -> None:
    with limited_target(concurrency=2, service_ms=20) as target:
        code, local, output = capacity(
            target.url, tmp_path / "local", "--server-pid", str(target.pid), *SEARCH
        )
        assert code == 0, output[-3000:]
        code, distributed, output = _distributed_capacity(
            target.url, tmp_path / "distributed", target.pid
        )
        assert code == 0, output[-3000:]
    assert local["status"] == distributed["status"] == "found", (local, distributed)
    assert distributed["generator"]["workers"] == 2
    for level in distributed["levels"]:
        assert level["generator"]["processes"] == 3  # the master and two workers
        assert level["generator"]["busiest_process_pct"] > 0
    # Every level's Locust summary comes from the master's API.
    assert (
        "/predict" in next((tmp_path / "distributed").glob("levels/*/locust_stats.csv")).read_text()
    )
    found = [local["capacity_rps"], distributed["capacity_rps"]]
    theoretical = target.capacity_rps
    for value in found:
        assert 0.70 * theoretical <= value <= 1.02 * theoretical, (found, theoretical)
    assert abs(found[0] - found[1]) <= 0.15 * max(found), found


def _window_message(directory: Path, requests: int) -> dict[str, Any]:
    record = Window(2.0, requests, 0, {10: requests}).to_json() | {"cpu_pct": 40.0}
    return {"windows_dir": str(directory), "record": record}


def test_the_master_writes_each_workers_windows_to_the_current_level_only(tmp_path: Path) -> None:
    current, previous = tmp_path / "level-02" / "windows", tmp_path / "level-01" / "windows"
    assert store_worker_window(str(current), "host-a_1", _window_message(current, 20))
    assert store_worker_window(str(current), "host/b 2", _window_message(current, 30))
    late = _window_message(previous, 99)
    assert not store_worker_window(str(current), "host-a_1", late)
    assert not previous.exists()
    rounds = read_rounds(current, expected_files=2)
    assert [r.window.requests for r in rounds] == [50]
    assert rounds[0].cpu_pct == (40.0, 40.0)
    written = (current / "windows-host_b_2.jsonl").read_bytes().splitlines()
    assert orjson.loads(written[0])["requests"] == 30


def _level_with(generator: GeneratorLoad) -> LevelResult:
    return LevelResult(
        offered_rps=100, achieved_rps=100, p50_ms=5, p95_ms=8, p99_ms=9, error_ratio=0.0,
        requests=600, users=4, held_s=6, stable=True, latency_rising=False, generator=generator,
    )  # fmt: skip


def test_a_busy_worker_makes_the_level_generator_limited() -> None:
    master = SimpleNamespace(master_sample=lambda: None)
    level = _MasterLevel(cast(LocustMaster, master), Path("."), check_every_s=2.0)
    busy = level.generator_sample(Round(Window(2.0, 200, 0), (93.0, 30.0)))
    calm = level.generator_sample(Round(Window(2.0, 200, 0), (40.0, 30.0)))
    assert busy is not None
    assert calm is not None
    objective = Objective(slo_p95_ms=50)
    for sample, limited in ((busy, True), (calm, False)):
        load = GeneratorLoad(sample.busiest_pct, sample.total_pct, sample.processes, cores=3)
        assert judge(_level_with(load), objective).generator_limited is limited
    assert (busy.processes, busy.total_pct) == (3, 123.0)
