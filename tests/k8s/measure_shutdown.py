"""How long ``mlcanary controller`` takes to stop on SIGTERM, the figure in
docs/kubernetes-controller.md: ``python -m tests.k8s.measure_shutdown [--runs N]``.

Each run starts the controller's module as its pod does, against the API server double, with one
rollout whose analysis interval is 30 s and a Prometheus with no series, and waits until the
controller leads and has written its first tick. Then it sends SIGTERM, in one of two moments:

* ``watching``: a second after that tick, while the loop waits on its watch, which would last
  until the next tick, 30 s later; the time is from the signal to the exit;
* ``mid-tick``: while a tick waits on a Prometheus query held for 0.5 s; the time is from the
  query's answer to the exit, as the tick under way must finish and write its status first.

Each run checks that the tick's status was written and the lease handed back, and the script
prints every time, the median and the maximum of each moment.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from pathlib import Path

from tests.k8s.cluster import Cluster, rollout_document, running_cluster
from tests.k8s.controller_process import PrometheusStub, controller_process
from tests.k8s.scenarios import wait_for

_HOLD_S = 0.5


def _ticks(cluster: Cluster) -> int:
    return len(cluster.status().get("history", []))


def stop_time(moment: str, folder: Path) -> float:
    """One run: seconds from SIGTERM (``watching``) or from the held query's answer
    (``mid-tick``) to the controller's exit."""
    with running_cluster() as cluster, PrometheusStub() as prometheus:
        document = rollout_document("gateway-api")
        document["spec"]["metrics"]["address"] = prometheus.url
        document["spec"]["analysis"].update(interval="30s", maxDuration="10m")
        cluster.install(document)
        with controller_process(cluster.double.url, folder, "measured") as running:
            if moment == "mid-tick":
                prometheus.hold()
                wait_for(prometheus.held.is_set, 60)
                running.process.send_signal(signal.SIGTERM)
                time.sleep(_HOLD_S)
                started = time.monotonic()
                prometheus.release()
            else:
                wait_for(lambda: _ticks(cluster) == 1, 60)
                time.sleep(1.0)
                started = time.monotonic()
                running.process.send_signal(signal.SIGTERM)
            code = running.process.wait(timeout=60)
            elapsed = time.monotonic() - started
        if code != 0 or _ticks(cluster) != 1 or cluster.lease_holders()[-1:] != [""]:
            raise SystemExit(
                f"{moment}: exit {code}, or no status, or the lease kept:\n{running.output()}"
            )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each moment")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        for moment in ("watching", "mid-tick"):
            times = [stop_time(moment, Path(folder)) for _ in range(runs)]
            listed = " ".join(f"{t:.2f}" for t in times)
            print(
                f"{moment:>8}: median {statistics.median(times):.2f}s, "
                f"max {max(times):.2f}s over {runs} runs ({listed})"
            )


if __name__ == "__main__":
    main()
