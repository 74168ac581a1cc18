from __future__ import annotations

import logging

import pytest
import torch

from mlcanary.gpu import nvml
from mlcanary.gpu.cuda_fake import FakeCuda
from mlcanary.gpu.device import DeviceError, select_torch_device, why_not_cuda
from mlcanary.gpu.nvml_fake import FakeDevice, FakeNvml
from mlcanary.models.registry import ModelRef, ModelVersion, load_predictor

GIB = 2**30


def test_auto_takes_the_gpu_with_the_most_free_memory() -> None:
    cuda = FakeCuda([2 * GIB, 30 * GIB, 12 * GIB])
    assert select_torch_device("auto", cuda) == "cuda:1"
    assert select_torch_device("cuda", cuda) == "cuda:1"


def test_auto_without_a_gpu_is_the_cpu() -> None:
    assert select_torch_device("auto", FakeCuda([])) == "cpu"


def test_explicit_choices_are_kept() -> None:
    cuda = FakeCuda([30 * GIB, 2 * GIB])
    assert select_torch_device("cuda:1", cuda) == "cuda:1"
    assert select_torch_device("cpu", cuda) == "cpu"


@pytest.mark.parametrize(
    ("preference", "free", "message"),
    [
        ("cuda", [], "no CUDA GPU is usable"),
        ("cuda:0", [], "no CUDA GPU is usable"),
        ("cuda:2", [GIB, GIB], "only 2 GPU"),
        ("cuda:x", [GIB], "must be a GPU index"),
        ("tpu", [GIB], "unknown device 'tpu'"),
        ("cudax", [GIB], "unknown device 'cudax'"),
    ],
)
def test_impossible_choices_are_refused(preference: str, free: list[int], message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        select_torch_device(preference, FakeCuda(free))


def test_a_torch_version_loads_on_the_cpu_when_asked(trained: dict[str, ModelVersion]) -> None:
    _, predictor = load_predictor(ModelRef("digits", "v2"), "cpu")
    assert predictor.device == "cpu"


@pytest.mark.gpu
def test_a_torch_version_goes_to_the_freest_gpu(trained: dict[str, ModelVersion]) -> None:
    import torch

    _, predictor = load_predictor(ModelRef("digits", "v2"), "auto")
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    assert predictor.device == f"cuda:{free.index(max(free))}"


def test_auto_without_a_gpu_logs_why_it_serves_on_the_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlcanary.gpu.device"):
        assert select_torch_device("auto", FakeCuda([])) == "cpu"
    assert f"serving on the CPU: {why_not_cuda()}" in caplog.messages


@pytest.mark.parametrize(
    ("cuda", "library", "reason"),
    [
        (None, FakeNvml(), "is a CPU build"),
        (
            "13.0",
            FakeNvml(init_error="Driver Not Loaded"),
            "is built for CUDA 13.0, but no NVIDIA GPU is visible: NVML cannot start: "
            "Driver Not Loaded",
        ),
        (
            "13.0",
            FakeNvml([FakeDevice()], driver_version="550.54.15", cuda_driver_version=12040),
            "is built for CUDA 13.0, but CUDA cannot use the 1 GPU(s) NVML sees (driver "
            "550.54.15, which supports CUDA 12.4)",
        ),
    ],
)
def test_the_reason_names_what_to_change(
    monkeypatch: pytest.MonkeyPatch, cuda: str | None, library: FakeNvml, reason: str
) -> None:
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(nvml, "load_library", lambda: library)
    assert why_not_cuda() == f"torch {torch.__version__} {reason}"
