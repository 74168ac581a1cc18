from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from mlcanary.gpu import nvml
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml
from mlcanary.serving.gpu_metrics import start_gpu_sampler
from mlcanary.settings import ServingSettings, SettingsError


def _value(registry: CollectorRegistry, name: str, gpu: str) -> float | None:
    labels = {"model": "digits", "version": "v2", "gpu": gpu}
    return registry.get_sample_value(name, labels)


def test_gauges_follow_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [
        FakeDevice(memory_used=5 * 2**30, utilization_percent=60, power_milliwatts=250_000),
        FakeDevice(memory_total=40 * 2**30, power_milliwatts=None, utilization_percent=None),
    ]
    library = FakeNvml(devices)
    monkeypatch.setattr(nvml, "load_library", lambda: library)
    registry = CollectorRegistry()
    sampler = start_gpu_sampler("digits", "v2", 3600, registry=registry)
    assert sampler is not None
    try:
        assert _value(registry, "mlcanary_gpu_memory_used_bytes", "0") == 5 * 2**30
        assert _value(registry, "mlcanary_gpu_memory_total_bytes", "0") == 80 * 2**30
        assert _value(registry, "mlcanary_gpu_utilization_ratio", "0") == pytest.approx(0.6)
        assert _value(registry, "mlcanary_gpu_power_watts", "0") == 250.0
        assert _value(registry, "mlcanary_gpu_memory_total_bytes", "1") == 40 * 2**30
        assert _value(registry, "mlcanary_gpu_power_watts", "1") is None
        assert _value(registry, "mlcanary_gpu_utilization_ratio", "1") is None

        devices[0].memory_used = 7 * 2**30
        sampler.sample()
        assert _value(registry, "mlcanary_gpu_memory_used_bytes", "0") == 7 * 2**30
    finally:
        sampler.close()
    assert not library.initialised, "closing the sampler shuts NVML down"


def test_no_gpu_no_gauges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml, "load_library", lambda: FakeNvml(init_error="Driver Not Loaded"))
    registry = CollectorRegistry()
    assert start_gpu_sampler("digits", "v2", 5, registry=registry) is None
    assert list(registry.collect()) == []


def test_sample_interval_is_checked(fresh_env: object) -> None:
    env = {"MLCANARY_MODEL": "digits:v2", "MLCANARY_GPU_SAMPLE_S": "0"}
    with pytest.raises(SettingsError, match="MLCANARY_GPU_SAMPLE_S"):
        ServingSettings.from_env(env)
    assert ServingSettings.from_env({"MLCANARY_MODEL": "digits:v2"}).gpu_sample_s == 5


@pytest.mark.gpu
def test_real_gpus_fill_the_gauges() -> None:
    registry = CollectorRegistry()
    sampler = start_gpu_sampler("digits", "v2", 3600, registry=registry)
    assert sampler is not None
    try:
        total = _value(registry, "mlcanary_gpu_memory_total_bytes", "0")
        used = _value(registry, "mlcanary_gpu_memory_used_bytes", "0")
        assert total is not None
        assert used is not None
        assert 0 <= used <= total
    finally:
        sampler.close()
