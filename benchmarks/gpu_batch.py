"""Torch inference on the CPU and on the GPU across batch sizes: where does the GPU win?

Run: ``python -m benchmarks.gpu_batch [--out reports/gpu-batch] [--min-seconds 0.3] [--threads 1]``

Two networks of the digits reference (``mlcanary.models.reference.nets``): the CNN of version
v2 (the architecture and size that is served; weights do not change the arithmetic, so they are left
at their initial values) and a wide MLP (4 layers of 4096) that gives a GPU enough work to
show its throughput. Each call is timed end to end as the service runs it: rows from a NumPy
array, moved to the device, the forward pass, the argmax brought back to the CPU, so the
host-to-device copy and the synchronisation a GPU needs are paid. Batch sizes go 1, 2, 4, ...,
1024; each point repeats the call for at least ``--min-seconds`` after a warm-up and reports
the median latency and the throughput (rows/s) at that median. The CPU runs with
``--threads`` intra-op threads, by default 1 like a serving worker (``MLCANARY_TORCH_THREADS``):
the comparison is one worker on a CPU core against one worker on a GPU.

The crossover is the smallest batch size from which the GPU's throughput stays above the
CPU's; on a machine without a usable GPU the report says "no GPU: CPU only". Results go to
``gpu_batch.json`` and ``gpu_batch.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from mlcanary.gpu.nvml import read_inventory
from mlcanary.models.reference.dataset import N_FEATURES
from mlcanary.models.reference.nets import DigitsCNN, DigitsMLP

BATCH_SIZES = [1 << i for i in range(11)]
NETWORKS: dict[str, Callable[[], torch.nn.Module]] = {
    "digits-cnn-v2": lambda: DigitsCNN(channels=32),
    "wide-mlp-4x4096": lambda: DigitsMLP(hidden=4096, depth=4),
}


@dataclass(frozen=True)
class Point:
    network: str
    device: str
    batch: int
    median_ms: float
    p90_ms: float
    rows_per_s: float
    calls: int


def _measure(
    net: torch.nn.Module, device: str, rows: npt.NDArray[np.float32], min_seconds: float
) -> list[float]:
    def call() -> None:
        with torch.inference_mode():
            batch = torch.from_numpy(rows).to(device)
            net(batch).argmax(dim=1).cpu()

    for _ in range(5):
        call()
    latencies: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds or len(latencies) < 10:
        before = time.perf_counter()
        call()  # .cpu() synchronises with the GPU, so the time is the whole call
        latencies.append(time.perf_counter() - before)
    return latencies


def run(min_seconds: float) -> tuple[list[Point], list[str]]:
    devices = ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    points = []
    for name, build in NETWORKS.items():
        for device in devices:
            torch.manual_seed(0)
            net = build().to(device).eval()
            for batch in BATCH_SIZES:
                rows = rng.uniform(0, 16, (batch, N_FEATURES)).astype(np.float32)
                latencies = _measure(net, device, rows, min_seconds)
                median = statistics.median(latencies)
                points.append(
                    Point(
                        network=name,
                        device=device,
                        batch=batch,
                        median_ms=median * 1000,
                        p90_ms=statistics.quantiles(latencies, n=10)[-1] * 1000,
                        rows_per_s=batch / median,
                        calls=len(latencies),
                    )
                )
                print(f"{name:<16} {device:<7} batch {batch:>5}  median {median * 1000:8.3f} ms"
                      f"  {batch / median:12.0f} rows/s")  # fmt: skip
    return points, devices


def crossover(points: list[Point], network: str) -> int | str:
    cpu = {p.batch: p.rows_per_s for p in points if p.network == network and p.device == "cpu"}
    gpu = {p.batch: p.rows_per_s for p in points if p.network == network and p.device != "cpu"}
    if not gpu:
        return "no GPU: CPU only"
    for batch in BATCH_SIZES:
        if all(gpu[b] > cpu[b] for b in BATCH_SIZES if b >= batch):
            return batch
    return "the GPU never overtakes the CPU up to batch 1024"


def plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(NETWORKS), figsize=(6 * len(NETWORKS), 4.5))
    for axis, network in zip(axes, NETWORKS, strict=True):
        for device in sorted({p.device for p in points}):
            series = [p for p in points if p.network == network and p.device == device]
            axis.plot([p.batch for p in series], [p.rows_per_s for p in series], "o-", label=device)
        axis.set(xscale="log", yscale="log", xlabel="batch size (rows)", ylabel="rows/s",
                 title=f"{network}: crossover {crossover(points, network)}")  # fmt: skip
        axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-batch"))
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    points, devices = run(args.min_seconds)
    inventory = read_inventory()
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "devices": devices,
            "gpus": [gpu.name for gpu in inventory.gpus],
            "no_gpu_reason": inventory.reason,
        },
        "crossover_batch": {network: crossover(points, network) for network in NETWORKS},
        "points": [asdict(p) for p in points],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_batch.json").write_text(json.dumps(report, indent=2))
    plot(points, args.out / "gpu_batch.png")
    print(json.dumps(report["crossover_batch"]))
    print(f"wrote {args.out / 'gpu_batch.json'} and {args.out / 'gpu_batch.png'}")


if __name__ == "__main__":
    main()
