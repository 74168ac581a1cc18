"""Capacity of digits v1 (logistic regression) against v4 (a 400-tree random forest), one worker
each, with the cost of a million requests on each at the given hourly prices.

    python -m benchmarks.capacity_digits [--slo-p95-ms 50] [--processes 1] [--price 0.10]
        [--out reports/capacity-digits]

The versions are served one after the other, never together, so neither competes with the other
for cores; the load generator (Locust) runs on the same machine, and every level records its
CPU, so a run where it was the bottleneck says so instead of reporting its limit as capacity.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlcanary.loadtest.cli import SearchParameters, run_search
from mlcanary.loadtest.compare import comparison_document, write_comparison_report
from mlcanary.loadtest.verdict import Objective
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.serving.launcher import ServeOptions, free_port, spawn_server, stop_server, wait_ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slo-p95-ms", type=float, default=50.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--price", type=float, default=0.10, help="Hourly price of the node.")
    parser.add_argument("--window-s", type=float, default=2.0)
    parser.add_argument("--max-hold-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path("reports/capacity-digits"))
    args = parser.parse_args()
    parameters = SearchParameters(
        objective=Objective(slo_p95_ms=args.slo_p95_ms), processes=args.processes,
        start_rps=10.0, max_rps=100_000.0, resolution=0.10, window_s=args.window_s,
        max_hold_s=args.max_hold_s, feedback_ratio=0.0,
    )  # fmt: skip
    train_reference_versions(["v1", "v4"])
    sides = []
    for version in ("v1", "v4"):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        out = args.out / version
        out.mkdir(parents=True, exist_ok=True)
        log = out / "serve.log"
        server = spawn_server(ServeOptions(f"digits:{version}", port, device="cpu"), log)
        try:
            wait_ready(server, url, 180, log)
            sides.append((version, run_search(url, parameters, out, server.pid), args.price))
        finally:
            stop_server(server)
    paths = write_comparison_report(comparison_document(sides[0], sides[1]), args.out)
    print("\n".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
