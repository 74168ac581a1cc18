from __future__ import annotations

import pytest

from mlcanary.gpu import nvml
from mlcanary.gpu.nvml import NoGpuError, nvml_session, read_inventory
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    library = FakeNvml(
        [
            FakeDevice(memory_used=3 * 2**30, utilization_percent=42, power_milliwatts=123_456),
            FakeDevice(
                name="NVIDIA A100-SXM4-40GB MIG",
                memory_total=40 * 2**30,
                utilization_percent=None,
                power_milliwatts=None,
                temperature_celsius=None,
                mig_current=1,
            ),
        ]
    )
    monkeypatch.setattr(nvml, "load_library", lambda: library)
    return library


def test_readings_convert_nvml_units_and_leave_unsupported_fields_empty(fake: FakeNvml) -> None:
    inventory = read_inventory()
    first, second = inventory.gpus
    assert (inventory.driver_version, inventory.cuda_driver_version) == ("550.54.15", "12.4")
    assert inventory.reason is None
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.memory_used_bytes == 3 * 2**30
    assert first.memory_total_bytes == 80 * 2**30
    assert first.utilization_ratio == pytest.approx(0.42)
    assert first.power_watts == pytest.approx(123.456)
    assert first.temperature_celsius == 35.0
    assert first.mig_mode == "disabled"
    assert second.index == 1
    assert (second.utilization_ratio, second.power_watts, second.temperature_celsius) == (
        None,
        None,
        None,
    )
    assert second.mig_mode == "enabled"
    assert not fake.initialised, "NVML must be shut down after reading"


def test_a_machine_without_the_driver_gets_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    library = FakeNvml(init_error="NVML Shared Library Not Found")
    monkeypatch.setattr(nvml, "load_library", lambda: library)
    inventory = read_inventory()
    assert inventory.gpus == ()
    assert inventory.reason == "NVML cannot start: NVML Shared Library Not Found"
    assert inventory.to_json() == {
        "gpus": [],
        "driver_version": None,
        "cuda_driver_version": None,
        "reason": "NVML cannot start: NVML Shared Library Not Found",
    }


def test_a_driver_with_no_gpu_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    library = FakeNvml([])
    monkeypatch.setattr(nvml, "load_library", lambda: library)
    with pytest.raises(NoGpuError, match="reports no GPU"), nvml_session():
        pass
    assert not library.initialised


def test_an_unexpected_nvml_error_is_not_mistaken_for_unsupported(fake: FakeNvml) -> None:
    fake.devices.append(FakeDevice())
    fake.nvmlDeviceGetPowerUsage = _lost  # type: ignore[method-assign]
    with pytest.raises(fake.NVMLError, match="GPU is lost"), nvml_session() as session:
        session.readings()
    assert not fake.initialised


def _lost(handle: FakeDevice) -> int:
    raise FakeNvml.NVMLError(15, "GPU is lost")


def test_this_machine_answers_without_raising() -> None:
    """On a machine without a GPU the real library gives a reason; with one, readings."""
    inventory = read_inventory()
    assert bool(inventory.gpus) != bool(inventory.reason)


@pytest.mark.gpu
def test_real_gpus_report_memory_and_driver() -> None:
    inventory = read_inventory()
    assert inventory.driver_version
    for gpu in inventory.gpus:
        assert 0 <= gpu.memory_used_bytes <= gpu.memory_total_bytes
        assert gpu.memory_total_bytes > 2**30
        assert gpu.name
