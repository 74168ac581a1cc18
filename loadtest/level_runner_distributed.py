"""Capacity levels on Locust's own distributed mode: one master here, workers anywhere.

One machine's Locust cannot always load a server to its capacity (a GPU server may take more
than a few cores can send). Locust's master and workers spread the users over machines, or over
the worker Deployment in ``loadtest/k8s/``. A worker exits when its master quits, so the master
stays up for the whole search and each level is started and stopped through its web API
(``/swarm``, ``/stop``), which also hands the level's rate and windows folder to the workers.
Workers send their windows to the master (`traffic.window_recorder`), which writes them here;
each window carries its worker's own CPU, so the generator-saturation rule sees every worker,
and the master's CPU is sampled here like a local generator's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from mlcanary.loadtest.level_runner_locust import (
    LevelLoad,
    LocustFailedError,
    LocustLevelRunner,
    LocustSettings,
    Round,
    stop_process,
    traffic_options,
)
from mlcanary.loadtest.usage import UsageProbe
from mlcanary.loadtest.usage.process_cpu import ProcessTreeCpu, TreeSample
from mlcanary.loadtest.window import Window
from mlcanary.serving.launcher import free_port

__all__ = ["DistributedLevelRunner", "LocustMaster", "MasterSettings"]

_READY = "ready"


@dataclass(frozen=True)
class MasterSettings:
    workers: int
    bind_host: str = "127.0.0.1"  # where workers connect; 0.0.0.0 for workers on other machines
    bind_port: int = 5557
    wait_s: float = 120.0  # for the workers to connect, before the first level

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.wait_s <= 0:
            raise ValueError(f"the wait for workers must be > 0 s, got {self.wait_s}")

    def worker_command(self, locustfile: Path) -> str:
        host = "THIS_HOST" if self.bind_host in ("0.0.0.0", "*", "") else self.bind_host  # noqa: S104
        return (
            f"locust -f {locustfile} --worker --master-host {host} --master-port {self.bind_port}"
        )


class LocustMaster:
    """A Locust master process, with its web API on loopback, for one or several searches."""

    def __init__(self, master: MasterSettings, locust: LocustSettings, log_path: Path) -> None:
        self.settings = master
        self.locust = locust
        self.log_path = log_path
        self.web_port = free_port()
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.web_port}", timeout=10.0)
        self.process: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTreeCpu | None = None

    def __enter__(self) -> Self:
        s, m = self.locust, self.settings
        command = [
            sys.executable, "-m", "locust", "-f", str(s.locustfile), "--master",
            "--master-bind-host", m.bind_host, "--master-bind-port", str(m.bind_port),
            "--web-host", "127.0.0.1", "--web-port", str(self.web_port), "--host", s.url,
            *traffic_options(s), "--loglevel", "WARNING",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.tree = ProcessTreeCpu(self.process.pid)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.api.close()
        if self.process is not None:
            stop_process(self.process)

    def failure(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        return f"the locust master exited with code {self.process.returncode}:\n{tail}"

    def ready_workers(self) -> int:
        workers = self.api.get("/stats/requests").json().get("workers", [])
        return sum(1 for worker in workers if worker["state"] == _READY)

    def wait_for_workers(self, wait_s: float) -> None:
        """Until every expected worker is connected and idle, or fail naming how many came."""
        deadline = time.monotonic() + wait_s
        ready = 0
        while time.monotonic() < deadline:
            if (failure := self.failure()) is not None:
                raise LocustFailedError(failure)
            try:
                ready = self.ready_workers()
            except httpx.HTTPError:
                ready = 0  # the web API is not up yet
            if ready >= self.settings.workers:
                return
            time.sleep(0.25)
        raise LocustFailedError(
            f"{ready} of {self.settings.workers} locust workers ready after {wait_s:.0f} s;"
            f" start them with: {self.settings.worker_command(self.locust.locustfile)}"
        )

    def swarm(self, url: str, users: int, rate_per_user: float, windows_dir: Path) -> None:
        form = {
            "user_count": str(users), "spawn_rate": str(users), "host": url,
            "rate_per_user": f"{rate_per_user:.6g}", "windows_dir": str(windows_dir),
        }  # fmt: skip
        answer = self.api.post("/swarm", data=form).json()
        if not answer.get("success"):
            raise LocustFailedError(f"the locust master refused the level: {answer}")

    def stop(self, level_dir: Path) -> None:
        """Stop the level, keep Locust's summary of it, and wait for the workers to be idle."""
        if self.failure() is not None:
            return
        (level_dir / "locust_stats.csv").write_bytes(self.api.get("/stats/requests/csv").content)
        self.api.post("/stop")
        self.wait_for_workers(30.0)

    def master_sample(self) -> TreeSample | None:
        return self.tree.sample_tree() if self.tree is not None else None


class _MasterLevel:
    def __init__(self, master: LocustMaster, level_dir: Path, check_every_s: float) -> None:
        self.master = master
        self.level_dir = level_dir
        self.check_every_s = check_every_s
        self.checked = time.monotonic()
        master.master_sample()

    def failure(self) -> str | None:
        if (failure := self.master.failure()) is not None:
            return failure
        if time.monotonic() - self.checked < self.check_every_s:
            return None
        self.checked = time.monotonic()
        workers = self.master.api.get("/stats/requests").json().get("workers", [])
        if len(workers) < self.master.settings.workers:
            return f"{len(workers)} of {self.master.settings.workers} locust workers left"
        return None

    def generator_sample(self, latest: Round) -> TreeSample | None:
        master = self.master.master_sample()
        master_pct = master.total_pct if master is not None else 0.0
        return TreeSample(
            busiest_pct=max(master_pct, *latest.cpu_pct),
            total_pct=master_pct + sum(latest.cpu_pct),
            processes=1 + len(latest.cpu_pct),
        )

    def stop(self) -> None:
        self.master.stop(self.level_dir)


class DistributedLevelRunner(LocustLevelRunner):
    """Levels on the workers of a running `LocustMaster`; the search is unchanged."""

    def __init__(
        self,
        settings: LocustSettings,
        master: LocustMaster,
        server_cpu: UsageProbe | None = None,
        gpu: UsageProbe | None = None,
        on_window: Callable[[int, Window], None] = lambda _i, _w: None,
    ) -> None:
        super().__init__(settings, server_cpu=server_cpu, gpu=gpu, on_window=on_window)
        self.master = master

    @property
    def generator_processes(self) -> int:
        return self.master.settings.workers

    @property
    def generator_cores(self) -> int:
        """Each worker and the master is one gevent loop: a core each, wherever it runs."""
        return self.master.settings.workers + 1

    def start_level(self, offered_rps: float, users: int, level_dir: Path) -> LevelLoad:
        windows = level_dir / "windows"
        windows.mkdir(parents=True, exist_ok=True)
        self.master.wait_for_workers(30.0)
        self.master.swarm(self.settings.url, users, offered_rps / users, windows)
        return _MasterLevel(self.master, level_dir, check_every_s=self.settings.window_s)
