"""Tests marked ``gpu`` run only where NVML sees a GPU. CI machines have none, so they skip
there too (not a failure); they are run and recorded on a GPU machine."""

from __future__ import annotations

import functools

import pytest

from mlcanary.gpu.nvml import GpuInventory, read_inventory


@functools.cache
def _inventory() -> GpuInventory:
    return read_inventory()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") and not _inventory().gpus:
        pytest.skip(
            f"needs an NVIDIA GPU ({_inventory().reason}); CI has none, run on a GPU machine"
        )
