from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mlcanary.gpu import nvml
from mlcanary.gpu.cli import gpu_app
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml

app = typer.Typer()
app.add_typer(gpu_app, name="gpu")


def _use(monkeypatch: pytest.MonkeyPatch, library: FakeNvml) -> None:
    monkeypatch.setattr(nvml, "load_library", lambda: library)


def test_no_gpu_is_a_plain_message_and_exit_0(monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, FakeNvml(init_error="Driver Not Loaded"))
    result = CliRunner().invoke(app, ["gpu", "info"])
    assert result.exit_code == 0
    assert result.output == "no NVIDIA GPU visible: NVML cannot start: Driver Not Loaded\n"


def test_no_gpu_json(monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, FakeNvml(init_error="Driver Not Loaded"))
    result = CliRunner().invoke(app, ["gpu", "info", "--json"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["gpus"] == []
    assert document["reason"] == "NVML cannot start: Driver Not Loaded"


def test_gpus_as_json_carry_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, FakeNvml([FakeDevice(memory_used=2**30, utilization_percent=7)]))
    result = CliRunner().invoke(app, ["gpu", "info", "--json"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["driver_version"] == "550.54.15"
    assert document["cuda_driver_version"] == "12.4"
    assert document["reason"] is None
    assert document["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-fake-0",
            "memory_total_bytes": 80 * 2**30,
            "memory_used_bytes": 2**30,
            "utilization_ratio": 0.07,
            "power_watts": 70.0,
            "temperature_celsius": 35.0,
            "mig_mode": "disabled",
        }
    ]


def test_gpus_as_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [FakeDevice(memory_used=2**30), FakeDevice(power_milliwatts=None)]
    _use(monkeypatch, FakeNvml(devices))
    result = CliRunner().invoke(app, ["gpu", "info"], terminal_width=200)
    assert result.exit_code == 0
    assert "driver 550.54.15, CUDA 12.4" in result.output
    assert "1.0 / 80.0 GiB" in result.output
    assert "70 W" in result.output
    assert "n/a" in result.output


def test_the_real_library_on_this_machine_exits_0() -> None:
    result = CliRunner().invoke(app, ["gpu", "info", "--json"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert bool(document["gpus"]) != bool(document["reason"])
