"""``mlcanary gpu``: what NVML sees on this machine.

A machine without a GPU or driver is a normal answer (exit 0), so scripts and CI steps can call
``mlcanary gpu info --json`` anywhere and branch on ``gpus`` being empty.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlcanary.console import console
from mlcanary.gpu.nvml import GpuInventory, read_inventory

__all__ = ["gpu_app"]

gpu_app = typer.Typer(no_args_is_help=True)


@gpu_app.callback()
def gpu() -> None:
    """GPUs visible through NVML (nvidia-ml-py)."""


_GIB = 2**30


def _optional(value: float | None, unit: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else f"{value * scale:.0f} {unit}"


def _table(inventory: GpuInventory) -> Table:
    table = Table(
        "gpu", "name", "memory used / total", "utilization", "power", "temp", "MIG",
        title=f"driver {inventory.driver_version}, CUDA {inventory.cuda_driver_version}",
    )  # fmt: skip
    for gpu in inventory.gpus:
        table.add_row(
            str(gpu.index),
            gpu.name,
            f"{gpu.memory_used_bytes / _GIB:.1f} / {gpu.memory_total_bytes / _GIB:.1f} GiB",
            _optional(gpu.utilization_ratio, "%", 100),
            _optional(gpu.power_watts, "W"),
            _optional(gpu.temperature_celsius, "°C"),
            gpu.mig_mode or "n/a",
        )
    return table


@gpu_app.command("info")
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the GPUs: memory, utilization, power, temperature, driver and CUDA versions, MIG."""
    inventory = read_inventory()
    if as_json:
        typer.echo(json.dumps(inventory.to_json(), indent=2))
    elif not inventory.gpus:
        typer.echo(f"no NVIDIA GPU visible: {inventory.reason}")
    else:
        console.print(_table(inventory))
