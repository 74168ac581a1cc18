"""Runs one load level with Locust, as a real headless subprocess, until the level is stable.

One Locust run per level, so that every level starts from the same state (fresh users and
connections) and a stuck level cannot leak into the next. Locust paces its users to the offered
rate (``--rate-per-user``, see `traffic.locustfile.LabeledTrafficUser`) and its processes write
per-window statistics (`window_recorder`); this runner reads them while it runs, stops Locust
once the level is stable or clearly overloaded, and samples the generator's own CPU and the
target's utilization at every window.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Protocol

import orjson
import psutil

import mlcanary.loadtest
from mlcanary.loadtest.level import GeneratorLoad, LevelResult
from mlcanary.loadtest.stability import StabilityRule, is_stable, latency_rising
from mlcanary.loadtest.usage import UsageProbe
from mlcanary.loadtest.usage.process_cpu import ProcessTreeCpu, TreeSample
from mlcanary.loadtest.window import Window, in_parallel, in_sequence

__all__ = [
    "LOCUSTFILE",
    "LevelLoad",
    "LocustFailedError",
    "LocustLevelRunner",
    "LocustSettings",
    "Round",
    "read_rounds",
    "stop_process",
    "traffic_options",
]

LOCUSTFILE = Path(mlcanary.loadtest.__file__).parent / "traffic" / "locustfile.py"


class LocustFailedError(RuntimeError):
    """Locust exited before the level was measured; the message carries its log's tail."""


@dataclass(frozen=True)
class LocustSettings:
    url: str
    workdir: Path
    slo_p95_ms: float
    processes: int = 1
    window_s: float = 2.0
    warmup_windows: int = 1
    stability: StabilityRule = field(default_factory=StabilityRule)
    max_hold_s: float = 30.0
    # Users = offered rate x objective x headroom: by Little's law that many requests are in
    # flight when every response takes `headroom` times the objective, so users only run out
    # when the target is far beyond the objective anyway.
    headroom: float = 4.0
    min_users: int = 4
    max_users: int = 5000
    feedback_ratio: float = 0.0
    locustfile: Path = LOCUSTFILE
    data: Path | None = None  # labeled rows of the user's; None: the digits holdout
    label_column: str = "label"

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if self.max_hold_s < self.window_s * (self.warmup_windows + self.stability.windows):
            raise ValueError(
                f"max_hold_s ({self.max_hold_s}) must cover the warm-up and "
                f"{self.stability.windows} windows of {self.window_s}s"
            )

    def users_for(self, offered_rps: float, processes: int) -> int:
        """At least one user per generator process, so that none idles."""
        wanted = math.ceil(offered_rps * self.slo_p95_ms / 1000 * self.headroom)
        return max(self.min_users, processes, min(self.max_users, wanted))


def traffic_options(s: LocustSettings) -> list[str]:
    """The locustfile's options every level shares, in Locust's command-line form."""
    options = ["--feedback-ratio", str(s.feedback_ratio), "--window-s", str(s.window_s)]
    if s.data is not None:
        options += ["--data", str(s.data.resolve()), "--label-column", s.label_column]
    return options


@dataclass
class _Samples:
    generator: list[TreeSample] = field(default_factory=list)
    usage: dict[str, list[float]] = field(default_factory=dict)
    machine: list[float] = field(default_factory=list)

    def tail_mean(self, values: list[float], count: int) -> float | None:
        return fmean(values[-count:]) if values else None


@dataclass(frozen=True)
class Round:
    """One window as all generator processes saw it, and each process's CPU during it (percent
    of one core, as the process measured itself)."""

    window: Window
    cpu_pct: tuple[float, ...]


def read_rounds(directory: Path, expected_files: int) -> list[Round]:
    """Windows summed over the generator processes, up to the last one every process has written."""
    files = sorted(directory.glob("windows-*.jsonl"))
    if len(files) < expected_files:
        return []
    # A line still being written has no newline yet: only whole lines are read.
    per_file = [[orjson.loads(line) for line in f.read_bytes().split(b"\n")[:-1]] for f in files]
    count = min(len(records) for records in per_file)
    return [
        Round(
            in_parallel([Window.from_json(records[i]) for records in per_file]),
            tuple(float(records[i].get("cpu_pct", 0.0)) for records in per_file),
        )
        for i in range(count)
    ]


class LevelLoad(Protocol):
    """The load generator of one level, however it runs."""

    def failure(self) -> str | None:
        """Why the generator can no longer measure the level; None while it runs."""
        ...

    def generator_sample(self, latest: Round) -> TreeSample | None:
        """The generator's CPU over the latest round."""
        ...

    def stop(self) -> None: ...


class _LocalProcesses:
    """One headless Locust run (with its own ``--processes``) on this machine, per level."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.tree = ProcessTreeCpu(self.process.pid)
        self.tree.sample_tree()

    def failure(self) -> str | None:
        if self.process.poll() is None:
            return None
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        return f"locust exited with code {self.process.returncode}:\n{tail}"

    def generator_sample(self, latest: Round) -> TreeSample | None:
        return self.tree.sample_tree()

    def stop(self) -> None:
        stop_process(self.process)


class LocustLevelRunner:
    """Levels run by Locust on this machine; `level_runner_distributed` runs them on workers."""

    def __init__(
        self,
        settings: LocustSettings,
        server_cpu: UsageProbe | None = None,
        gpu: UsageProbe | None = None,
        on_window: Callable[[int, Window], None] = lambda _i, _w: None,
    ) -> None:
        self.settings = settings
        self.probes = {
            name: probe for name, probe in (("server_cpu", server_cpu), ("gpu", gpu)) if probe
        }
        self.on_window = on_window
        self.levels_run = 0

    @property
    def generator_processes(self) -> int:
        """Processes that run users, one windows file each."""
        return self.settings.processes

    @property
    def generator_cores(self) -> int:
        """Cores the generator's processes share: this machine's."""
        return psutil.cpu_count() or 1

    def _command(self, offered_rps: float, users: int, level_dir: Path) -> list[str]:
        s = self.settings
        command = [
            sys.executable, "-m", "locust", "-f", str(s.locustfile), "--headless",
            "--host", s.url, "-u", str(users), "-r", str(users),
            "-t", f"{math.ceil(s.max_hold_s + 4 * s.window_s)}s", "--stop-timeout", "2",
            "--rate-per-user", f"{offered_rps / users:.6g}", *traffic_options(s),
            "--windows-dir", str(level_dir / "windows"),
            "--csv", str(level_dir / "locust"), "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        if s.processes > 1:
            command += ["--processes", str(s.processes)]
        return command

    def start_level(self, offered_rps: float, users: int, level_dir: Path) -> LevelLoad:
        command = self._command(offered_rps, users, level_dir)
        return _LocalProcesses(command, level_dir / "locust.log")

    def _overloaded(self, judged: list[Window]) -> bool:
        """Two windows in a row far beyond the objective: no need to hold to the end."""
        if len(judged) < 2:
            return False
        slo = self.settings.slo_p95_ms
        return all(w.percentile_ms(0.95) > 4 * slo or w.failure_ratio > 0.5 for w in judged[-2:])

    def run(self, offered_rps: float) -> LevelResult:
        s = self.settings
        self.levels_run += 1
        users = s.users_for(offered_rps, self.generator_processes)
        level_dir = s.workdir / f"level-{self.levels_run:02d}-{offered_rps:.1f}rps"
        level_dir.mkdir(parents=True, exist_ok=True)
        load = self.start_level(offered_rps, users, level_dir)
        samples = _Samples()
        started = time.monotonic()
        windows: list[Window] = []
        outcome = "not stable after the maximum hold"
        try:
            for probe in self.probes.values():
                probe.sample()
            psutil.cpu_percent()
            while time.monotonic() - started < s.max_hold_s + 10 * s.window_s:
                time.sleep(s.window_s / 8)
                if (failure := load.failure()) is not None:
                    raise LocustFailedError(failure)
                rounds = read_rounds(level_dir / "windows", self.generator_processes)
                if len(rounds) == len(windows):
                    continue
                windows = [r.window for r in rounds]
                self.on_window(len(windows), windows[-1])
                if (tree := load.generator_sample(rounds[-1])) is not None:
                    samples.generator.append(tree)
                for name, probe in self.probes.items():
                    if (value := probe.sample()) is not None:
                        samples.usage.setdefault(name, []).append(value)
                samples.machine.append(psutil.cpu_percent())
                judged = windows[s.warmup_windows :]
                if is_stable(judged, s.stability):
                    outcome = f"stable after {len(windows)} windows"
                    break
                if self._overloaded(judged):
                    outcome = "stopped early: far beyond the objective"
                    break
                if len(windows) * s.window_s >= s.max_hold_s:
                    break
        finally:
            load.stop()
        judged = windows[s.warmup_windows :][-s.stability.windows :]
        if not judged:
            raise LocustFailedError(f"no window was recorded at {offered_rps:.1f} req/s")
        return _level(
            offered_rps=offered_rps, users=users, judged=judged, samples=samples, s=s,
            outcome=outcome, held_s=time.monotonic() - started, cores=self.generator_cores,
        )  # fmt: skip


def _level(
    *,
    offered_rps: float,
    users: int,
    judged: list[Window],
    samples: _Samples,
    s: LocustSettings,
    outcome: str,
    held_s: float,
    cores: int,
) -> LevelResult:
    total = in_sequence(judged)
    count = len(judged)
    recent = samples.generator[-count:]
    generator = GeneratorLoad(
        busiest_process_pct=fmean(t.busiest_pct for t in recent) if recent else 0.0,
        total_pct=fmean(t.total_pct for t in recent) if recent else 0.0,
        processes=max((t.processes for t in recent), default=1),
        cores=cores,
    )
    return LevelResult(
        offered_rps=offered_rps,
        achieved_rps=total.throughput_rps,
        p50_ms=total.percentile_ms(0.50),
        p95_ms=total.percentile_ms(0.95),
        p99_ms=total.percentile_ms(0.99),
        error_ratio=total.failure_ratio,
        requests=total.requests,
        users=users,
        held_s=held_s,
        stable=outcome.startswith("stable"),
        latency_rising=latency_rising(judged, s.stability),
        generator=generator,
        server_cpu_pct=samples.tail_mean(samples.usage.get("server_cpu", []), count),
        gpu_utilization_pct=samples.tail_mean(samples.usage.get("gpu", []), count),
        machine_cpu_pct=samples.tail_mean(samples.machine, count),
        note=outcome,
    )


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM lets Locust stop its users and write its CSV summary; SIGKILL what is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
