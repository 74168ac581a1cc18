"""``mlcanary bench``: capacity search, CPU-against-GPU comparison, capacity check of a rollout.

Commands parse and print; the search is `search.search_capacity` over
`level_runner_locust.LocustLevelRunner`, and the reports come from `report` and `compare`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import psutil
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mlcanary.console import ExitCode, console, fail, read_rollout
from mlcanary.loadtest.level_runner_distributed import (
    DistributedLevelRunner,
    LocustMaster,
    MasterSettings,
)
from mlcanary.loadtest.level_runner_locust import (
    LocustFailedError,
    LocustLevelRunner,
    LocustSettings,
)
from mlcanary.loadtest.search import JudgedLevel, SearchSettings, SearchStatus, search_capacity
from mlcanary.loadtest.usage import UsageProbe
from mlcanary.loadtest.usage.metrics_endpoint import (
    MetricsEndpointCpu,
    MetricsEndpointGpu,
    read_samples,
)
from mlcanary.loadtest.usage.nvml import NvmlGpu
from mlcanary.loadtest.usage.process_cpu import ProcessTreeCpu
from mlcanary.loadtest.verdict import Objective

__all__ = ["bench_app"]

bench_app = typer.Typer(
    no_args_is_help=True, help="Capacity with Locust: search, compare, check a rollout."
)
CLAIMED = {SearchStatus.FOUND, SearchStatus.AT_LEAST}


@dataclass(frozen=True)
class SearchParameters:
    """What `capacity` and `compare` both pass to a search."""

    objective: Objective
    processes: int
    start_rps: float
    max_rps: float
    resolution: float
    window_s: float
    max_hold_s: float
    feedback_ratio: float
    data: Path | None = None
    label_column: str = "label"
    master: MasterSettings | None = None  # Locust's distributed mode; None: local processes

    def locust_settings(self, url: str, workdir: Path) -> LocustSettings:
        try:
            return LocustSettings(
                url=url, workdir=workdir, slo_p95_ms=self.objective.slo_p95_ms,
                processes=self.processes, window_s=self.window_s, max_hold_s=self.max_hold_s,
                feedback_ratio=self.feedback_ratio, data=self.data, label_column=self.label_column,
            )  # fmt: skip
        except ValueError as error:
            fail(str(error), ExitCode.INVALID)


@contextlib.contextmanager
def _master(url: str, p: SearchParameters, out: Path) -> Iterator[LocustMaster | None]:
    """The Locust master of a distributed search, up with its workers ready; None for local."""
    if p.master is None:
        yield None
        return
    settings = p.locust_settings(url, out / "levels")
    with LocustMaster(p.master, settings, out / "locust-master.log") as master:
        console.print(
            f"waiting up to {p.master.wait_s:.0f} s for {p.master.workers} locust workers on"
            f" {p.master.bind_host}:{p.master.bind_port}:"
            f" {p.master.worker_command(settings.locustfile)}",
            highlight=False,
        )
        try:
            master.wait_for_workers(p.master.wait_s)
        except LocustFailedError as error:
            fail(str(error), ExitCode.ERROR)
        yield master


def _probes(
    url: str, server_pid: int | None, client: httpx.Client, stack: contextlib.ExitStack
) -> tuple[UsageProbe | None, str, UsageProbe | None, str]:
    server_cpu: UsageProbe | None
    if server_pid is not None:
        if not psutil.pid_exists(server_pid):
            fail(f"--server-pid: no process {server_pid} on this machine", ExitCode.INVALID)
        server_cpu, cpu_source = (
            ProcessTreeCpu(server_pid),
            f"psutil on pid {server_pid} and children",
        )
    else:
        found = bool(read_samples(url, "process_cpu_seconds_total", client))
        server_cpu = MetricsEndpointCpu(url, client) if found else None
        cpu_source = (
            "the target's process_cpu_seconds_total"
            if found
            else "not available (give --server-pid)"
        )
    endpoint_gpu = MetricsEndpointGpu(url, client)
    if endpoint_gpu.sample() is not None:
        return server_cpu, cpu_source, endpoint_gpu, "the target's mlcanary_gpu_utilization_ratio"
    nvml = NvmlGpu()
    stack.callback(nvml.close)
    if nvml.available:
        return server_cpu, cpu_source, nvml, "NVML on this machine's GPUs"
    return server_cpu, cpu_source, None, nvml.reason


def run_search(
    url: str,
    p: SearchParameters,
    out: Path,
    server_pid: int | None,
    master: LocustMaster | None = None,
) -> dict[str, Any]:
    """One capacity search with a progress bar; the report's document."""
    from mlcanary.loadtest.report import capacity_document, write_capacity_report

    try:
        with httpx.Client() as probe_client:
            probe_client.get(url, timeout=5.0)
    except httpx.HTTPError as error:
        fail(f"--url: cannot reach {url} ({error})", ExitCode.INVALID)
    settings = p.locust_settings(url, out / "levels")
    try:
        search = SearchSettings(start_rps=p.start_rps, max_rps=p.max_rps, resolution=p.resolution)
    except ValueError as error:
        fail(str(error), ExitCode.INVALID)
    max_windows = int(p.max_hold_s / p.window_s) + 1
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client())
        server_cpu, cpu_source, gpu, gpu_source = _probes(url, server_pid, client, stack)
        progress = stack.enter_context(
            Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[window]}"),
                TimeElapsedColumn(), console=console,
            )
        )  # fmt: skip
        task = progress.add_task("level 1", total=max_windows, window="")

        def on_window(index: int, window: Any) -> None:
            progress.update(
                task,
                completed=index,
                window=f"window {index}: {window.throughput_rps:.1f} req/s, "
                f"p95 {window.percentile_ms(0.95):.0f} ms",
            )

        def on_level(judged: JudgedLevel) -> None:
            levels.append(judged)
            level, verdict = judged.level, judged.verdict
            mark = "[green]sustained[/]" if verdict.sustained else "[red]not sustained[/]"
            progress.console.print(
                f"{level.offered_rps:8.1f} req/s offered: {level.achieved_rps:.1f} achieved, "
                f"p50/p95/p99 {level.p50_ms:.0f}/{level.p95_ms:.0f}/{level.p99_ms:.0f} ms, "
                f"errors {level.error_ratio:.2%}, {level.note} -> {mark} "
                + "; ".join(verdict.reasons)
            )
            description = f"level {len(levels) + 1}"
            progress.update(task, completed=0, window="", description=description)

        levels: list[JudgedLevel] = []
        runner = (
            LocustLevelRunner(settings, server_cpu, gpu, on_window)
            if master is None
            else DistributedLevelRunner(settings, master, server_cpu, gpu, on_window)
        )
        result = search_capacity(runner, p.objective, search, on_level=on_level)
    details = {
        "server_cpu": cpu_source,
        "gpu": gpu_source,
        "generator": _generator_details(p),
        "search": {"start_rps": p.start_rps, "max_rps": p.max_rps, "resolution": p.resolution,
                   "window_s": p.window_s, "max_hold_s": p.max_hold_s,
                   "stable_windows": settings.stability.windows,
                   "stable_tolerance": settings.stability.tolerance},
    }  # fmt: skip
    document = capacity_document(result, url, p.objective, details)
    paths = write_capacity_report(document, out)
    console.print(f"[bold]{result.status.value}[/]: {result.message}")
    console.print("report: " + ", ".join(str(p) for p in paths))
    return document


def _generator_details(p: SearchParameters) -> dict[str, Any]:
    if p.master is None:
        return {"tool": "locust", "processes": p.processes, "cores": psutil.cpu_count()}
    return {"tool": "locust", "mode": "distributed", "workers": p.master.workers,
            "master_bind": f"{p.master.bind_host}:{p.master.bind_port}"}  # fmt: skip


Url = Annotated[str, typer.Option(help="Base URL of the target, e.g. http://127.0.0.1:3000.")]
SloOption = Annotated[float, typer.Option("--slo-p95-ms", help="Latency objective: p95 in ms.")]
ErrorBudget = Annotated[
    float, typer.Option(help="Highest error ratio within the objective (0..1).")
]
Processes = Annotated[
    int, typer.Option(help="Locust generator processes on this machine (--processes).")
]
Workers = Annotated[
    int,
    typer.Option(
        help="Locust's distributed mode: run a master here and wait for this many workers "
        "(on any machine, or the worker Deployment in loadtest/k8s/); 0: local processes."
    ),
]
MasterBindHost = Annotated[
    str, typer.Option(help="Where the master listens for workers (0.0.0.0 for other machines).")
]
MasterPort = Annotated[int, typer.Option(help="The master's port for workers.")]
WorkerWaitS = Annotated[float, typer.Option(help="Seconds to wait for the workers to connect.")]
StartRps = Annotated[float, typer.Option(help="First offered rate; doubled until it fails.")]
MaxRps = Annotated[float, typer.Option(help="Highest rate ever offered.")]
Resolution = Annotated[float, typer.Option(help="Stop bisecting at this relative bracket.")]
WindowS = Annotated[float, typer.Option(help="Seconds per measurement window.")]
MaxHoldS = Annotated[float, typer.Option(help="Longest hold of one level, in seconds.")]
FeedbackRatio = Annotated[
    float, typer.Option(help="Share of predictions followed by feedback (extra load).")
]
Data = Annotated[
    Path | None,
    typer.Option(
        help="Labeled rows to send (CSV, JSONL or Parquet), shaped by the target's own schema "
        "(default: the digits holdout)."
    ),
]
LabelColumn = Annotated[str, typer.Option(help="The label column of --data.")]


def _parameters(
    *,
    slo: float, budget: float, processes: int, start: float, max_rps: float,
    resolution: float, window_s: float, max_hold_s: float, feedback_ratio: float,
    data: Path | None, label_column: str, workers: int, master_bind_host: str,
    master_port: int, worker_wait_s: float,
) -> SearchParameters:  # fmt: skip
    try:
        objective = Objective(slo_p95_ms=slo, error_budget=budget)
    except ValueError as error:
        fail(f"--slo-p95-ms/--error-budget: {error}", ExitCode.INVALID)
    if not 0 <= feedback_ratio <= 1:
        fail(f"--feedback-ratio must be within 0..1, got {feedback_ratio}", ExitCode.INVALID)
    if data is not None and not data.is_file():
        fail(f"--data: {data} is not a file", ExitCode.INVALID)
    master = None
    if workers:
        if processes != 1:
            fail("--processes and --workers: choose local processes or workers", ExitCode.INVALID)
        try:
            master = MasterSettings(workers, master_bind_host, master_port, worker_wait_s)
        except ValueError as error:
            fail(f"--workers/--worker-wait-s: {error}", ExitCode.INVALID)
    return SearchParameters(
        objective, processes, start, max_rps, resolution, window_s, max_hold_s, feedback_ratio,
        data, label_column, master,
    )  # fmt: skip


@bench_app.command()
def capacity(
    *,
    url: Url,
    slo_p95_ms: SloOption,
    error_budget: ErrorBudget = 0.01,
    processes: Processes = 1,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/capacity"),
    server_pid: Annotated[
        int | None, typer.Option(help="Target's process on this machine: sample its CPU.")
    ] = None,
    start_rps: StartRps = 10.0,
    max_rps: MaxRps = 100_000.0,
    resolution: Resolution = 0.10,
    window_s: WindowS = 2.0,
    max_hold_s: MaxHoldS = 30.0,
    feedback_ratio: FeedbackRatio = 0.0,
    data: Data = None,
    label_column: LabelColumn = "label",
    workers: Workers = 0,
    master_bind_host: MasterBindHost = "127.0.0.1",
    master_port: MasterPort = 5557,
    worker_wait_s: WorkerWaitS = 120.0,
) -> None:
    """Find the highest request rate the target sustains within the objective.

    Exits 0 when a capacity is claimed, 1 when none is (the generator was the bottleneck, or
    not even the lowest rate held).
    """
    parameters = _parameters(
        slo=slo_p95_ms, budget=error_budget, processes=processes, start=start_rps,
        max_rps=max_rps, resolution=resolution, window_s=window_s, max_hold_s=max_hold_s,
        feedback_ratio=feedback_ratio, data=data, label_column=label_column, workers=workers,
        master_bind_host=master_bind_host, master_port=master_port, worker_wait_s=worker_wait_s,
    )  # fmt: skip
    with _master(url, parameters, out) as master:
        document = run_search(url, parameters, out, server_pid, master)
    if SearchStatus(document["status"]) not in CLAIMED:
        raise typer.Exit(int(ExitCode.ERROR))


@bench_app.command()
def compare(
    *,
    a: Annotated[str, typer.Option("--a", help="URL of the first target.")],
    b: Annotated[str, typer.Option("--b", help="URL of the second target.")],
    slo_p95_ms: SloOption,
    label_a: Annotated[str, typer.Option(help="Name of the first target.")] = "a",
    label_b: Annotated[str, typer.Option(help="Name of the second target.")] = "b",
    price_a: Annotated[float | None, typer.Option(help="Hourly price of the first.")] = None,
    price_b: Annotated[float | None, typer.Option(help="Hourly price of the second.")] = None,
    prices: Annotated[
        Path | None, typer.Option(help="YAML {label: hourly price}, instead of the flags.")
    ] = None,
    error_budget: ErrorBudget = 0.01,
    processes: Processes = 1,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/compare"),
    server_pid_a: Annotated[int | None, typer.Option(help="First target's process.")] = None,
    server_pid_b: Annotated[int | None, typer.Option(help="Second target's process.")] = None,
    start_rps: StartRps = 10.0,
    max_rps: MaxRps = 100_000.0,
    resolution: Resolution = 0.10,
    window_s: WindowS = 2.0,
    max_hold_s: MaxHoldS = 30.0,
    feedback_ratio: FeedbackRatio = 0.0,
    data: Data = None,
    label_column: LabelColumn = "label",
    workers: Workers = 0,
    master_bind_host: MasterBindHost = "127.0.0.1",
    master_port: MasterPort = 5557,
    worker_wait_s: WorkerWaitS = 120.0,
) -> None:
    """Capacity of two targets, one after the other, and a million requests' cost on each."""
    from mlcanary.loadtest.compare import comparison_document, write_comparison_report
    from mlcanary.loadtest.cost import load_prices

    if label_a == label_b:
        fail(f"--label-a and --label-b must differ, both are {label_a!r}", ExitCode.INVALID)
    if prices is not None:
        if price_a is not None or price_b is not None:
            fail(
                "--prices: give either --prices or --price-a and --price-b, not both",
                ExitCode.INVALID,
            )
        try:
            hourly = load_prices(prices, [label_a, label_b])
        except (OSError, ValueError) as error:
            fail(f"--prices: {error}", ExitCode.INVALID)
    elif price_a is None or price_b is None:
        fail("--price-a and --price-b (or --prices FILE) are required", ExitCode.INVALID)
    else:
        for name, value in (("--price-a", price_a), ("--price-b", price_b)):
            if value < 0:
                fail(f"{name} must be >= 0, got {value}", ExitCode.INVALID)
        hourly = {label_a: price_a, label_b: price_b}
    parameters = _parameters(
        slo=slo_p95_ms, budget=error_budget, processes=processes, start=start_rps,
        max_rps=max_rps, resolution=resolution, window_s=window_s, max_hold_s=max_hold_s,
        feedback_ratio=feedback_ratio, data=data, label_column=label_column, workers=workers,
        master_bind_host=master_bind_host, master_port=master_port, worker_wait_s=worker_wait_s,
    )  # fmt: skip
    sides = []
    # One master for both searches: its workers would exit with a master that quit.
    with _master(a, parameters, out) as master:
        for label, url, pid in ((label_a, a, server_pid_a), (label_b, b, server_pid_b)):
            console.rule(f"{label}: {url}")
            document = run_search(url, parameters, out / label, pid, master)
            sides.append((label, document, hourly[label]))
    document = comparison_document(sides[0], sides[1])
    paths = write_comparison_report(document, out)
    for side in document["sides"]:
        cost = side["cost_per_million"]
        console.print(
            f"{side['label']}: capacity {side['capacity_rps'] or 0:.1f} req/s, "
            + (f"{cost:.3f} per million requests" if cost is not None else "no capacity claimed")
        )
    console.print("report: " + ", ".join(str(p) for p in paths))


@bench_app.command("check-rollout")
def check_rollout(
    *,
    file: Annotated[Path, typer.Option("-f", "--file", help="The ModelRollout YAML.")],
    capacity_report: Annotated[
        Path, typer.Option("--capacity", help="The canary's `bench capacity` JSON report.")
    ],
    current_rps: Annotated[float, typer.Option(help="Traffic the rollout will split, req/s.")],
) -> None:
    """Warn when the canary's measured capacity cannot absorb a step's share of the traffic.

    Exits 0 when every step fits, 1 with one line per step that does not, 2 on bad input.
    """
    from mlcanary.loadtest.rollout_capacity import capacity_warnings, read_capacity

    rollout = read_rollout(file)
    try:
        canary_capacity = read_capacity(capacity_report)
        warnings = capacity_warnings(rollout.spec, canary_capacity, current_rps)
    except ValueError as error:
        fail(str(error), ExitCode.INVALID)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if warnings:
        raise typer.Exit(int(ExitCode.ERROR))
    console.print(
        f"every step of {rollout.metadata.name} fits: at 100% the canary gets {current_rps:.1f}"
        f" req/s of its {canary_capacity:.1f} req/s capacity"
    )


if __name__ == "__main__":
    bench_app()
