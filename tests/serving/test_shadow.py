"""Shadow copies between real servers: a stable server told by its mirror file copies requests
to a canary server, compares the answers and counts them, and its clients never notice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from mlcanary.models.task import ClassificationOutput, RegressionOutput
from mlcanary.serving.launcher import free_port
from mlcanary.serving.metrics import ShadowMetrics
from mlcanary.serving.mirror_file import MirrorFile, MirrorSetting, render_setting
from mlcanary.serving.shadow import CopyLimits, ShadowCopier
from tests.conftest import StartServer
from tests.serving.promtext import metric
from tests.shadow_models import shadow_canaries

__all__ = ["shadow_canaries"]

pytestmark = pytest.mark.integration

ROWS = [[float(i % 17) for i in range(64)], [float(i % 5) * 3 for i in range(64)]]


def _mirror(directory: Path, url: str, canary: str, fraction: float = 1.0) -> None:
    setting = MirrorSetting(stable="v1", canary=canary, url=url, fraction=fraction)
    (directory / "digits.json").write_bytes(render_setting(setting))


def _predict(url: str, count: int) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [client.post("/predict", json={"instances": ROWS}) for _ in range(count)]


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.2)


def _copies(url: str, canary: str, outcome: str) -> float:
    return metric(url, "mlcanary_shadow_copies_total", version=canary, outcome=outcome)


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mirror"
    directory.mkdir()
    return directory


def test_copies_start_with_the_file_and_a_same_behaving_canary_agrees_on_every_row(
    shadow_canaries, start_server: StartServer, mirror_dir: Path
) -> None:
    with (
        start_server("digits:v1", MLCANARY_SHADOW_DIR=str(mirror_dir)) as stable,
        start_server("digits:v1-again") as canary,
    ):
        before = _predict(stable, 5)
        assert metric(canary, "mlcanary_http_requests_total", endpoint="/predict") == 0
        _mirror(mirror_dir, canary, "v1-again")
        time.sleep(1.5)  # the servers look at the file at most once a second
        answers = _predict(stable, 40)
        _wait(lambda: _copies(stable, "v1-again", "compared") == 40, "40 copies compared")
        assert [a.json()["version"] for a in answers] == ["v1"] * 40
        assert {a.json()["predictions"] == before[0].json()["predictions"] for a in answers} == {
            True
        }
        labels = {"version": "v1-again", "baseline": "v1"}
        assert metric(stable, "mlcanary_shadow_comparisons_total", outcome="agree", **labels) == 80
        assert metric(stable, "mlcanary_shadow_comparisons_total", outcome="disagree") == 0
        served = metric(canary, "mlcanary_http_requests_total", endpoint="/predict", code="200")
        assert served == 40

        (mirror_dir / "digits.json").write_bytes(b"{}")
        time.sleep(1.5)
        _predict(stable, 10)
        time.sleep(1)
        assert metric(canary, "mlcanary_http_requests_total", endpoint="/predict") == 40


def test_a_canary_with_shifted_labels_disagrees_and_each_flip_is_counted(
    shadow_canaries, start_server: StartServer, mirror_dir: Path
) -> None:
    _mirror(mirror_dir, "http://127.0.0.1:1", "v1-shifted")  # replaced once the canary runs
    with (
        start_server("digits:v1", MLCANARY_SHADOW_DIR=str(mirror_dir)) as stable,
        start_server("digits:v1-shifted") as canary,
    ):
        _mirror(mirror_dir, canary, "v1-shifted")
        time.sleep(1.5)
        ours = _predict(stable, 20)[0].json()["predictions"]
        _wait(lambda: _copies(stable, "v1-shifted", "compared") >= 20, "20 copies compared")
        labels = {"version": "v1-shifted", "baseline": "v1"}
        assert metric(stable, "mlcanary_shadow_comparisons_total", outcome="agree", **labels) == 0
        flips = [
            metric(
                stable,
                "mlcanary_shadow_flips_total",
                baseline_class=str(label),
                **{"class": str((label + 1) % 10)},
            )
            for label in ours
        ]
        assert all(count >= 20 for count in flips), flips


def test_copies_to_a_canary_that_is_down_or_never_answers_are_lost_and_clients_unaffected(
    shadow_canaries, start_server: StartServer, mirror_dir: Path
) -> None:
    port = free_port()
    slow = subprocess.Popen(
        [sys.executable, "-m", "tests.loadtest.limited_server", "--port", str(port),
         "--concurrency", "1", "--service-ms", "60000"],
    )  # fmt: skip
    try:
        with start_server(
            "digits:v1",
            MLCANARY_SHADOW_DIR=str(mirror_dir),
            MLCANARY_SHADOW_TIMEOUT_MS="2000",
            MLCANARY_SHADOW_SENDERS="1",
            MLCANARY_SHADOW_QUEUE="2",
        ) as stable:
            expected = _predict(stable, 1)[0].json()["predictions"]
            _mirror(mirror_dir, f"http://127.0.0.1:{free_port()}", "v1-again")  # nobody there
            time.sleep(1.5)
            down = _predict(stable, 5)
            lost = ("failed", "dropped")
            _wait(lambda: sum(_copies(stable, "v1-again", o) for o in lost) == 5, "5 copies lost")
            assert _copies(stable, "v1-again", "failed") >= 1

            _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, "up")
            _mirror(mirror_dir, f"http://127.0.0.1:{port}", "v1-shifted")  # answers in a minute
            time.sleep(1.5)
            silent = _predict(stable, 30)  # one copy waits, two queue, the rest are dropped
            _wait(lambda: _copies(stable, "v1-shifted", "timeout") == 3, "3 copies timed out")
            assert _copies(stable, "v1-shifted", "dropped") == 27
            for answer in (*down, *silent):
                assert answer.status_code == 200
                assert answer.json()["predictions"] == expected
    finally:
        slow.terminate()
        slow.wait(10)


# The comparison's edge cases, against scripted canary answers (httpx's MockTransport).


DIGITS = ClassificationOutput(classes=tuple(range(10)))


def _copier(
    tmp_path: Path,
    output: ClassificationOutput | RegressionOutput,
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[ShadowCopier, CollectorRegistry]:
    registry = CollectorRegistry()
    setting = MirrorSetting(stable="v1", canary="c", url="http://c", fraction=1.0)
    (tmp_path / "digits.json").write_bytes(render_setting(setting))
    copier = ShadowCopier(
        "v1",
        output,
        MirrorFile(tmp_path / "digits.json"),
        ShadowMetrics("digits", "v1", registry=registry),
        CopyLimits(senders=1),
        transport=httpx.MockTransport(answer),
    )
    return copier, registry


def _run(copier: ShadowCopier, answers: list[object], copies: int = 1) -> None:
    async def main() -> None:
        for _ in range(copies):
            copier.offer(orjson.dumps({"instances": ROWS}), answers)
        for _ in range(100):
            await asyncio.sleep(0.01)
        await copier.close()

    asyncio.run(main())


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    pair = {"model": "digits", "baseline": "v1", "version": "c"}
    return registry.get_sample_value(name, {**pair, **labels}) or 0.0


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (422, b'{"error": {"code": "wrong_shape"}}', "refused"),
        (503, b'{"error": {"code": "overloaded"}}', "failed"),
        (200, b'{"predictions": [1]}', "failed"),  # one answer for two rows
        (200, b"not json", "failed"),
    ],
)
def test_answers_that_cannot_be_compared_are_counted_by_what_went_wrong(
    tmp_path: Path, status: int, body: bytes, outcome: str
) -> None:
    copier, registry = _copier(tmp_path, DIGITS, lambda _: httpx.Response(status, content=body))
    _run(copier, [3, 8])
    assert _value(registry, "mlcanary_shadow_copies_total", outcome=outcome) == 1
    refusals = _value(
        registry, "mlcanary_shadow_flips_total", baseline_class="3", **{"class": "(refused)"}
    )
    assert refusals == (1 if outcome == "refused" else 0)


def test_a_canary_class_the_baseline_does_not_know_is_counted_as_other(tmp_path: Path) -> None:
    answer = httpx.Response(200, content=b'{"predictions": [3, "ten"]}')
    copier, registry = _copier(tmp_path, DIGITS, lambda _: answer)
    _run(copier, [3, 8], copies=3)
    assert _value(registry, "mlcanary_shadow_comparisons_total", outcome="agree") == 3
    other = {"baseline_class": "8", "class": "(other)"}
    assert _value(registry, "mlcanary_shadow_flips_total", **other) == 3


def test_a_regressor_counts_absolute_differences_and_their_squares(tmp_path: Path) -> None:
    answer = httpx.Response(200, content=b'{"predictions": [10.0, 7.5]}')
    copier, registry = _copier(tmp_path, RegressionOutput(), lambda _: answer)
    _run(copier, [12.0, 7.0], copies=2)
    assert _value(registry, "mlcanary_shadow_absolute_difference_count") == 4
    assert _value(registry, "mlcanary_shadow_absolute_difference_sum") == pytest.approx(5.0)
    assert _value(registry, "mlcanary_shadow_squared_difference_total") == pytest.approx(8.5)


def test_a_server_of_another_version_never_copies(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b'{"predictions": [3, 8]}')

    copier, _ = _copier(tmp_path, DIGITS, answer)
    (tmp_path / "digits.json").write_bytes(
        render_setting(MirrorSetting(stable="v3", canary="c", url="http://c", fraction=1.0))
    )
    _run(copier, [3, 8])
    assert calls == []
