"""Router overhead: one service direct, through mlcanary's router, through a plain HAProxy.

    python -m benchmarks.router_overhead [--duration 10] [--rounds 5] [--connections 32]

Two services serve digits v1, as a stable and a canary would. mlcanary's router (``mlcanary
router serve``, its configuration rendered from a route table) routes stable 100 / canary 0; the
plain HAProxy is a hand-written configuration of a dozen lines with the stable service as its
one server. wrk sends the same single-row request, with the same connections and duration, to
the stable service directly and through each router; the three take turns within each round,
in a rotating order, so that drift of the machine hits all alike. The ratios the targets are
written in are taken within each round, where the three measurements are closest in time, and
their median over the rounds is reported beside the median round of each. On a machine with
two or more CPUs the services are pinned to CPU 0 and wrk and both routers to CPU 1: a router's
work is then what it adds, not what it takes from the service's CPU. Each router's CPU time per
request (its HAProxy process's, read with psutil) is reported too: throughput on a machine that
other work shares moves from one round to the next, CPU time per request hardly does.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import psutil

from benchmarks.serving_throughput import (
    MODEL,
    Contender,
    Measurement,
    contenders,
    cpu_split,
    median,
    run_wrk,
    serving,
    write_results,
    wrk_post,
)
from mlcanary.local.router.state import RouterFiles
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.serving.launcher import free_port

TARGETS = {"throughput_vs_plain": 0.95, "throughput_vs_direct": 0.9, "p50_added_ms": 2.0}

PLAIN_HAPROXY = """\
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 10s

frontend plain
    bind 127.0.0.1:{port}

    default_backend service

backend service
    server stable {service}
"""


def _service() -> Contender:
    return next(c for c in contenders(free_port()) if c.name == "mlcanary")


def _router(name: str, workdir: Path, stable: str, canary: str) -> Contender:
    port = free_port()
    if name == "plain-haproxy":
        config = workdir / "plain-haproxy.cfg"
        config.write_text(PLAIN_HAPROXY.format(port=port, service=stable.removeprefix("http://")))
        return Contender(
            name, [shutil.which("haproxy") or "haproxy", "-db", "-f", str(config)], port
        )
    serve = [
        sys.executable, "-m", "mlcanary.cli", "router", "serve",
        "--state-dir", str(workdir / "state"), "--listen", f"127.0.0.1:{port}",
        "--route", f"stable={stable}=100", "--route", f"canary={canary}=0",
    ]  # fmt: skip
    return Contender(name, serve, port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--output", type=Path, default=Path("reports/router-overhead.json"))
    args = parser.parse_args()
    for binary, package in (("wrk", "wrk"), ("haproxy", "haproxy")):
        if shutil.which(binary) is None:
            print(
                f"{binary} is not installed: run `make system-deps` (Debian {package})",
                file=sys.stderr,
            )
            return 2
    train_reference_versions(["v1"])
    workdir = Path(tempfile.mkdtemp(prefix="mlcanary-bench-router-"))
    body, script = wrk_post(workdir)
    service_cpu, load_cpu = cpu_split()
    results: dict[str, list[Measurement]] = {}
    cpu_us: dict[str, list[float]] = {}
    with contextlib.ExitStack() as running:
        stable = running.enter_context(
            serving(_service(), service_cpu, body, workdir / "stable.log")
        )
        canary = running.enter_context(
            serving(_service(), service_cpu, body, workdir / "canary.log")
        )
        urls = {"direct": stable}
        for name in ("mlcanary-router", "plain-haproxy"):
            router = _router(name, workdir, stable, canary)  # one at a time: each its own port
            log = workdir / f"{name}.log"
            urls[name] = running.enter_context(serving(router, load_cpu, body, log))
        haproxies = {
            "mlcanary-router": _haproxy(RouterFiles.of_platform(workdir / "state").config),
            "plain-haproxy": _haproxy(workdir / "plain-haproxy.cfg"),
        }
        names = list(urls)
        for round_number in range(args.rounds):
            for name in names[round_number % len(names) :] + names[: round_number % len(names)]:
                run_wrk(urls[name], script, 3, args.connections, load_cpu)
                cpu_before = _cpu_s(haproxies.get(name))
                measured = replace(
                    run_wrk(urls[name], script, args.duration, args.connections, load_cpu),
                    contender=name,
                )
                results.setdefault(name, []).append(measured)
                line = (
                    f"round {round_number + 1}: {name:<16} {measured.requests_per_s:8.0f} req/s  "
                    f"p50 {measured.p50_ms:6.2f} ms  p99 {measured.p99_ms:6.2f} ms  "
                    f"errors {measured.errors}"
                )
                if name in haproxies:
                    served = measured.requests_per_s * args.duration
                    used = (_cpu_s(haproxies[name]) - cpu_before) / served * 1e6
                    cpu_us.setdefault(name, []).append(used)
                    line += f"  HAProxy CPU {used:5.1f} us/request"
                print(line, flush=True)
    summary = {name: median(runs) for name, runs in results.items()}
    per_round = [
        _ratios({name: runs[i] for name, runs in results.items()}) for i in range(args.rounds)
    ]
    ratios = {key: statistics.median(r[key] for r in per_round) for key in per_round[0]}
    cpu = {name: statistics.median(used) for name, used in cpu_us.items()}
    _print_summary(summary, ratios, cpu, args, service_cpu is not None)
    write_results(
        args,
        summary,
        results,
        pinned=service_cpu is not None,
        ratios=ratios,
        ratios_per_round=per_round,
        haproxy_cpu_us_per_request=cpu,
        targets=TARGETS,
    )
    return 0


def _haproxy(config: Path) -> psutil.Process:
    """The HAProxy process serving ``config`` (``router serve`` execs it, taskset too)."""
    return next(
        process
        for process in psutil.process_iter(["cmdline"])
        if str(config) in (process.info["cmdline"] or [])
    )


def _cpu_s(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


def _ratios(measured: dict[str, Measurement]) -> dict[str, float]:
    """One round's ratios: the three were measured minutes apart at most, on the same machine."""
    ours, plain, direct = (measured[n] for n in ("mlcanary-router", "plain-haproxy", "direct"))
    return {
        "throughput_vs_plain": ours.requests_per_s / plain.requests_per_s,
        "throughput_vs_direct": ours.requests_per_s / direct.requests_per_s,
        "p50_added_ms": ours.p50_ms - direct.p50_ms,
        "plain_throughput_vs_direct": plain.requests_per_s / direct.requests_per_s,
        "plain_p50_added_ms": plain.p50_ms - direct.p50_ms,
    }


def _print_summary(
    summary: dict[str, Measurement],
    ratios: dict[str, float],
    cpu: dict[str, float],
    args: argparse.Namespace,
    pinned: bool,
) -> None:
    print(
        f"\n{MODEL}, one row per request, wrk -t1 -c{args.connections}, median of {args.rounds} "
        f"rounds of {args.duration}s (ratios: median of each round's), pinned: {pinned}"
    )
    print(f"{'target':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, m in summary.items():
        print(f"{name:<16} {m.requests_per_s:8.0f} {m.p50_ms:8.2f} {m.p99_ms:8.2f} {m.errors:7d}")
    print()
    checks = (
        ("throughput_vs_plain", "mlcanary router / plain HAProxy throughput", ">="),
        ("throughput_vs_direct", "mlcanary router / direct throughput", ">="),
        ("p50_added_ms", "p50 added by mlcanary's router, ms", "<="),
    )
    for key, label, sense in checks:
        value, target = ratios[key], TARGETS[key]
        met = value >= target if sense == ">=" else value <= target
        print(f"{label:<44} {value:6.2f}  target {sense} {target:g}: {'met' if met else 'MISSED'}")
    print(
        f"{'plain HAProxy / direct throughput':<44} {ratios['plain_throughput_vs_direct']:6.2f}"
        f"  (p50 added {ratios['plain_p50_added_ms']:.2f} ms)"
    )
    ours, plain = cpu["mlcanary-router"], cpu["plain-haproxy"]
    print(
        f"{'HAProxy CPU per request, us':<44} mlcanary {ours:.1f}, plain {plain:.1f} "
        f"({ours / plain:.2f}x)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
