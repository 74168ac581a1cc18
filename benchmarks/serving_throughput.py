"""Serving throughput: mlcanary's BentoML service against FastAPI and Flask, in one run.

    python -m benchmarks.serving_throughput [--duration 10] [--rounds 3] [--connections 32]

Every contender serves the same model version with one server process, loaded through the
same loader. wrk, a separate process, sends the same single-row request to each in turn; rounds
are interleaved so that drift of the machine hits all alike, and the median round is reported.
On a machine with two or more CPUs the servers are pinned to CPU 0 and wrk to CPU 1, so the
load generator never competes with the server it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import orjson

from mlcanary.loadtest.labeled import digits_rows
from mlcanary.models.reference.train import train_reference_versions
from mlcanary.serving.launcher import free_port, stop_server

MODEL = "digits:v1"


@dataclass(frozen=True)
class Contender:
    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Measurement:
    contender: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def contenders(port: int) -> list[Contender]:
    py = sys.executable
    host = "127.0.0.1"
    return [
        Contender(
            "mlcanary",
            [
                py,
                "-m",
                "bentoml",
                "serve",
                "mlcanary.serving.service:ModelService",
                "--host",
                host,
                "--port",
                str(port),
            ],
            port,
        ),
        Contender(
            "mlcanary-nobatch",
            [py, "-m", "mlcanary.serving.entrypoint", "--host", host, "--port", str(port)],
            port,
            {"MLCANARY_MAX_BATCH": "1"},
        ),
        Contender(
            "fastapi",
            [
                py,
                "-m",
                "uvicorn",
                "benchmarks.baselines.fastapi_app:app",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            port,
        ),
        Contender(
            "flask",
            [
                py,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--bind",
                f"{host}:{port}",
                "--log-level",
                "warning",
                "benchmarks.baselines.flask_app:app",
            ],
            port,
        ),
        Contender(
            "bentoml-api",
            [
                py,
                "-m",
                "bentoml",
                "serve",
                "benchmarks.baselines.bentoml_api:PlainBentoService",
                "--host",
                host,
                "--port",
                str(port),
            ],
            port,
        ),
    ]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else command


@contextmanager
def serving(contender: Contender, cpu: int | None, body: bytes, log: Path) -> Iterator[str]:
    env = {**os.environ, "MLCANARY_MODEL": MODEL, "MLCANARY_WORKERS": "1", **contender.env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            pinned(contender.command, cpu),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{contender.port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{contender.name} exited early; see {log}")
            try:
                answer = httpx.post(
                    f"{url}/predict",
                    content=body,
                    timeout=5,
                    headers={"Content-Type": "application/json"},
                )
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{contender.name} did not answer within 180 s; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        stop_server(process)


def wrk_post(directory: Path) -> tuple[bytes, Path]:
    """One digits row as a /predict body, and the wrk script that posts it."""
    body = orjson.dumps({"instances": [orjson.loads(digits_rows()[0].body)["instances"][0]]})
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [=[{body.decode()}]=]\n"
    )
    return body, script


def cpu_split() -> tuple[int | None, int | None]:
    """The CPU of the servers and the CPU of wrk, when there are two to pin to."""
    cpus = os.cpu_count() or 1
    return (0, 1) if cpus >= 2 and shutil.which("taskset") else (None, None)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNIT[unit]


def run_wrk(url: str, script: Path, seconds: int, connections: int, cpu: int | None) -> Measurement:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"{url}/predict",
    ]
    out = subprocess.run(pinned(command, cpu), capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps is not None, out
    return Measurement(
        "", float(rps.group(1)), _ms(percentiles["50"]), _ms(percentiles["99"]), failed
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--output", type=Path, default=Path("reports/serving-throughput.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make system-deps` (Debian package wrk)", file=sys.stderr)
        return 2
    train_reference_versions(["v1"])
    workdir = Path(tempfile.mkdtemp(prefix="mlcanary-bench-"))
    body, script = wrk_post(workdir)
    server_cpu, load_cpu = cpu_split()
    results: dict[str, list[Measurement]] = {}
    for round_number in range(args.rounds):
        for contender in contenders(free_port()):
            with serving(contender, server_cpu, body, workdir / f"{contender.name}.log") as url:
                run_wrk(url, script, 3, args.connections, load_cpu)
                measured = run_wrk(url, script, args.duration, args.connections, load_cpu)
            measured = Measurement(
                contender.name,
                measured.requests_per_s,
                measured.p50_ms,
                measured.p99_ms,
                measured.errors,
            )
            results.setdefault(contender.name, []).append(measured)
            print(
                f"round {round_number + 1}: {contender.name:<17} "
                f"{measured.requests_per_s:8.0f} req/s  p50 {measured.p50_ms:6.1f} ms  "
                f"p99 {measured.p99_ms:6.1f} ms",
                flush=True,
            )
    summary = {name: median(runs) for name, runs in results.items()}
    _print_summary(summary, args, server_cpu)
    write_results(args, summary, results, pinned=server_cpu is not None)
    return 0


def write_results(
    args: argparse.Namespace,
    summary: dict[str, Measurement],
    results: dict[str, list[Measurement]],
    *,
    pinned: bool,
    **extra: object,
) -> None:
    """The run's settings, medians and every measurement as JSON at ``args.output``, with what
    a benchmark adds of its own (``extra``)."""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "model": MODEL,
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "pinned": pinned,
                "median": {k: asdict(v) for k, v in summary.items()},
                **extra,
                "runs": {k: [asdict(m) for m in v] for k, v in results.items()},
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.output}")


def median(runs: list[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda m: m.requests_per_s)
    return ordered[len(ordered) // 2]


def _print_summary(
    summary: dict[str, Measurement], args: argparse.Namespace, cpu: int | None
) -> None:
    print(
        f"\n{MODEL}, one row per request, {args.connections} connections, "
        f"median of {args.rounds} rounds of {args.duration}s, servers pinned: {cpu is not None}"
    )
    print(f"{'server':<17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, m in summary.items():
        print(f"{name:<17} {m.requests_per_s:8.0f} {m.p50_ms:8.1f} {m.p99_ms:8.1f} {m.errors:7d}")
    base = summary["fastapi"]
    ours = summary["mlcanary"]
    print(
        f"\nmlcanary / fastapi throughput ratio: {ours.requests_per_s / base.requests_per_s:.2f}"
        f"  (p99 {ours.p99_ms:.1f} ms vs {base.p99_ms:.1f} ms)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
