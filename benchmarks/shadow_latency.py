"""Client latency under a shadow step: one stable server with every request copied to a canary
(fraction 1.0, or ``--fraction``) against the same server copying nothing, in one run.

    python -m benchmarks.shadow_latency [--duration 10] [--rounds 5] [--connections 32]
                                        [--paced-share 0.5] [--fraction 1.0]

A real BentoML server serves digits v1 as stable and reads its mirror file; a second one serves
digits v3 as the canary. Between measurements only the mirror file changes (``{}``: no copies;
or the setting that copies every request to the canary), so both modes run on the same warm
processes. wrk sends the same single-row request to stable for each mode in turn, in alternating
order within the rounds, so that drift of the machine hits both alike; the ratios the target is
written in (p99 with the shadow within 10% of p99 without) are taken within each round and their
median over the rounds is reported. Each mode is measured under two loads: saturated (wrk
as fast as the server answers, the worst case, where every copy's CPU is taken from clients) and
paced at ``--paced-share`` of the saturated throughput measured without copies at warm-up
(each connection waits between its requests, through wrk's ``delay()``), closer to a server
with headroom, as production ones are run. The copies the server sent, compared and lost in each
shadowed measurement are read from its /metrics, so a run in which nothing was copied cannot
pass for a cheap shadow. On a machine with two or more CPUs stable is pinned to CPU 0, wrk and
the canary to CPU 1: the canary's own work is then not charged to the client of stable.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

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
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.serving.launcher import free_port
from mlcanary.serving.mirror_file import MirrorSetting, mirror_file_name, render_setting
from mlcanary.settings import env_name

CANARY = "digits:v3"
MODES = ("no-shadow", "shadow")
LOADS = ("saturated", "paced")
TARGET_P99_RATIO = 1.10
# The servers read their mirror file at most every second (`mlcanary.serving.mirror_file`).
MIRROR_SETTLE_S = 1.5


def _server(env: dict[str, str]) -> Contender:
    server = next(c for c in contenders(free_port()) if c.name == "mlcanary")
    return replace(server, env={**server.env, **env})


def _paced(script: Path, rate: float, connections: int) -> Path:
    """The wrk script, each connection waiting so that all send about ``rate`` requests/s."""
    paced = script.with_name("paced.lua")
    delay_ms = max(round(connections / rate * 1000), 1)
    paced.write_text(script.read_text() + f"function delay()\n  return {delay_ms}\nend\n")
    return paced


def _copies(url: str) -> dict[str, float]:
    """The stable server's copies so far, by outcome."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mlcanary_shadow_copies":
            continue
        for sample in family.samples:
            if sample.name == "mlcanary_shadow_copies_total":
                outcome = sample.labels["outcome"]
                counted[outcome] = counted.get(outcome, 0.0) + sample.value
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per mode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fraction", type=float, default=1.0, help="the share of requests copied")
    parser.add_argument(
        "--paced-share", type=float, default=0.5, help="the paced load's share of saturation"
    )
    parser.add_argument("--output", type=Path, default=Path("reports/shadow-latency.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make system-deps` (Debian package wrk)", file=sys.stderr)
        return 2
    train_reference_versions(["v1", "v3"])
    workdir = Path(tempfile.mkdtemp(prefix="mlcanary-bench-shadow-"))
    body, script = wrk_post(workdir)
    stable_cpu, load_cpu = cpu_split()
    mirror = workdir / "shadow" / mirror_file_name(MODEL.split(":")[0])
    mirror.parent.mkdir()
    results: dict[str, list[Measurement]] = {f"{m}/{load}": [] for load in LOADS for m in MODES}
    copies: dict[str, list[dict[str, float]]] = {load: [] for load in LOADS}
    with contextlib.ExitStack() as running:
        canary = running.enter_context(
            serving(_server({env_name("model"): CANARY}), load_cpu, body, workdir / "canary.log")
        )
        setting = MirrorSetting(stable="v1", canary="v3", url=canary, fraction=args.fraction)
        contents = {"no-shadow": render_setting(None), "shadow": render_setting(setting)}
        stable_env = {env_name("shadow_dir"): str(mirror.parent)}
        stable = running.enter_context(
            serving(_server(stable_env), stable_cpu, body, workdir / "stable.log")
        )
        warm = run_wrk(stable, script, 3, args.connections, load_cpu)
        rate = warm.requests_per_s * args.paced_share
        scripts = {"saturated": script, "paced": _paced(script, rate, args.connections)}
        for round_number in range(args.rounds):
            order = MODES if round_number % 2 == 0 else MODES[::-1]
            for load in LOADS:
                for mode in order:
                    mirror.write_bytes(contents[mode])
                    time.sleep(MIRROR_SETTLE_S)
                    before = _copies(stable)
                    measured = run_wrk(
                        stable, scripts[load], args.duration, args.connections, load_cpu
                    )
                    key = f"{mode}/{load}"
                    results[key].append(replace(measured, contender=key))
                    if mode == "shadow":
                        after = _copies(stable)
                        copies[load].append({k: v - before.get(k, 0.0) for k, v in after.items()})
                    print(
                        f"round {round_number + 1}: {key:<20} {measured.requests_per_s:8.0f} "
                        f"req/s  p50 {measured.p50_ms:6.2f} ms  p99 {measured.p99_ms:6.2f} ms",
                        flush=True,
                    )
        mirror.write_bytes(render_setting(None))
    ratios = {}
    per_round = {}
    for load in LOADS:
        per_round[load] = [
            _ratios(results[f"shadow/{load}"][i], results[f"no-shadow/{load}"][i])
            for i in range(args.rounds)
        ]
        ratios[load] = {
            key: statistics.median(r[key] for r in per_round[load]) for key in per_round[load][0]
        }
    summary = {key: median(runs) for key, runs in results.items()}
    _print_summary(summary, ratios, copies, args, rate, pinned=stable_cpu is not None)
    write_results(
        args,
        summary,
        results,
        pinned=stable_cpu is not None,
        canary=CANARY,
        fraction=args.fraction,
        paced_rate=rate,
        ratios=ratios,
        ratios_per_round=per_round,
        copies_per_round=copies,
    )
    return 0


def _ratios(shadow: Measurement, plain: Measurement) -> dict[str, float]:
    return {
        "p50": shadow.p50_ms / plain.p50_ms,
        "p99": shadow.p99_ms / plain.p99_ms,
        "throughput": shadow.requests_per_s / plain.requests_per_s,
    }


def _print_summary(
    summary: dict[str, Measurement],
    ratios: dict[str, dict[str, float]],
    copies: dict[str, list[dict[str, float]]],
    args: argparse.Namespace,
    rate: float,
    *,
    pinned: bool,
) -> None:
    print(
        f"\n{MODEL} stable, {CANARY} canary, fraction {args.fraction:g}, one row per request, "
        f"wrk -t1 -c{args.connections}, "
        f"median of {args.rounds} rounds of {args.duration}s per mode and load, "
        f"paced at {rate:.0f} req/s, pinned: {pinned}"
    )
    print(f"{'mode/load':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for key, m in summary.items():
        print(f"{key:<20} {m.requests_per_s:8.0f} {m.p50_ms:8.2f} {m.p99_ms:8.2f} {m.errors:7d}")
    for load in LOADS:
        counted = copies[load]
        sent = {
            k: sum(c.get(k, 0.0) for c in counted) for k in sorted({k for c in counted for k in c})
        }
        ratio = ratios[load]
        verdict = "met" if ratio["p99"] <= TARGET_P99_RATIO else "NOT met"
        print(
            f"{load}: shadow / no shadow (median of per-round ratios): p50 {ratio['p50']:.3f}, "
            f"p99 {ratio['p99']:.3f} (target <= {TARGET_P99_RATIO:.2f}: {verdict}), "
            f"throughput {ratio['throughput']:.3f}; copies "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(sent.items()) if v)
        )


if __name__ == "__main__":
    raise SystemExit(main())
