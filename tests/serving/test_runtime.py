from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from mlcanary.models.registry import ModelVersion
from mlcanary.models.schema import Batch
from mlcanary.models.task import Predictions
from mlcanary.serving.batching import MicroBatcher
from mlcanary.serving.errors import ClientError
from mlcanary.serving.ledger_memory import MemoryLedger
from mlcanary.serving.metrics import ServingMetrics
from mlcanary.serving.runtime import FeedbackLimits, ModelRuntime
from mlcanary.serving.tokens import TokenSigner

SECRET = b"k" * 32
LABELER = "labeler-key-0123456789"
ROW = [1.0] * 64


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _always(label: int) -> object:
    def predict(rows: Batch) -> Predictions:
        assert isinstance(rows, np.ndarray)
        return Predictions([label] * len(rows))

    return predict


@pytest.fixture
def world(trained: dict[str, ModelVersion]) -> tuple[ModelRuntime, CollectorRegistry, Clock]:
    registry = CollectorRegistry()
    clock = Clock()
    version = trained["v1"]
    metrics = ServingMetrics("digits", "v1", "sklearn", "cpu", version.digest, registry=registry)
    runtime = ModelRuntime(
        version,
        MicroBatcher(_always(3), 16),  # type: ignore[arg-type]
        TokenSigner(SECRET),
        MemoryLedger(),
        metrics,
        max_batch=16,
        max_body_bytes=1 << 20,
        max_inflight=8,
        feedback=FeedbackLimits(3600, LABELER.encode()),
        clock=clock,
    )
    return runtime, registry, clock


def _predict(runtime: ModelRuntime, rows: int = 1) -> dict[str, object]:
    body = orjson.dumps({"instances": [ROW] * rows})
    result: dict[str, object] = orjson.loads(asyncio.run(runtime.predict(body)))
    return result


def _feedback(runtime: ModelRuntime, token: str, label: int) -> dict[str, object]:
    result: dict[str, object] = orjson.loads(
        runtime.feedback(orjson.dumps({"token": token, "label": label}), LABELER)
    )
    return result


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {"model": "digits", **labels})
    return 0.0 if value is None else value


def test_predict_returns_labels_version_and_one_token_per_row(world) -> None:
    runtime, registry, _ = world
    answer = _predict(runtime, rows=3)
    assert answer["predictions"] == [3, 3, 3]
    assert (answer["model"], answer["version"]) == ("digits", "v1")
    assert len(answer["feedback_tokens"]) == 3  # type: ignore[arg-type]
    assert _value(registry, "mlcanary_predictions_total", version="v1") == 3


def test_feedback_counts_correct_and_incorrect_once(world) -> None:
    runtime, registry, _ = world
    tokens = _predict(runtime, rows=2)["feedback_tokens"]
    assert isinstance(tokens, list)
    right, wrong = tokens
    assert _feedback(runtime, right, 3)["correct"] is True
    assert _feedback(runtime, wrong, 4)["correct"] is False
    with pytest.raises(ClientError) as duplicate:
        _feedback(runtime, right, 3)
    assert duplicate.value.status == 409
    counts = {
        outcome: _value(registry, "mlcanary_feedback_total", version="v1", outcome=outcome)
        for outcome in ("correct", "incorrect")
    }
    assert counts == {"correct": 1.0, "incorrect": 1.0}
    assert (
        _value(registry, "mlcanary_feedback_rejected_total", version="v1", reason="duplicate") == 1
    )


def test_feedback_is_counted_for_the_version_that_predicted(world) -> None:
    runtime, registry, clock = world
    token = TokenSigner(SECRET).issue("digits", "v2", [7], clock.now)[0]
    assert _feedback(runtime, token, 7)["version"] == "v2"
    assert _value(registry, "mlcanary_feedback_total", version="v2", outcome="correct") == 1
    assert _value(registry, "mlcanary_feedback_total", version="v1", outcome="correct") == 0


@pytest.mark.parametrize(
    ("token_factory", "status", "reason"),
    [
        (
            lambda now: TokenSigner(b"z" * 32).issue("digits", "v1", [3], now)[0],
            403,
            "invalid_token",
        ),
        (lambda now: TokenSigner(SECRET).issue("iris", "v1", [3], now)[0], 422, "wrong_model"),
        (lambda now: TokenSigner(SECRET).issue("digits", "v1", [3], now - 7200)[0], 410, "expired"),
        (
            lambda now: TokenSigner(SECRET).issue("digits", "v1", [3], now + 3600)[0],
            403,
            "invalid_token",
        ),
        (lambda now: "1.bm90IGpzb24.c2ln", 403, "invalid_token"),
    ],
)
def test_refused_feedback_is_never_counted(world, token_factory, status, reason) -> None:
    runtime, registry, clock = world
    with pytest.raises(ClientError) as caught:
        _feedback(runtime, token_factory(clock.now), 3)
    assert caught.value.status == status
    assert _value(registry, "mlcanary_feedback_rejected_total", version="v1", reason=reason) == 1
    for version in ("v1", "v2"):
        for outcome in ("correct", "incorrect"):
            assert (
                _value(registry, "mlcanary_feedback_total", version=version, outcome=outcome) == 0
            )


def test_malformed_feedback_is_counted_as_malformed(world) -> None:
    runtime, registry, _ = world
    with pytest.raises(ClientError):
        runtime.feedback(b'{"token": "x"}', LABELER)
    assert (
        _value(registry, "mlcanary_feedback_rejected_total", version="v1", reason="malformed") == 1
    )


@pytest.mark.parametrize("credential", [None, "", "labeler-key-012345678", LABELER + "0"])
def test_feedback_without_the_labeler_key_is_refused_and_counted(world, credential) -> None:
    runtime, registry, _ = world
    token = _predict(runtime)["feedback_tokens"][0]  # type: ignore[index]
    body = orjson.dumps({"token": token, "label": 3})
    with pytest.raises(ClientError) as caught:
        runtime.feedback(body, credential)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer realm="feedback"'}
    reason = {"version": "v1", "reason": "unauthorized"}
    assert _value(registry, "mlcanary_feedback_rejected_total", **reason) == 1
    assert _value(registry, "mlcanary_feedback_total", version="v1", outcome="correct") == 0
    # The refused call claimed nothing: the labeler can still send this label.
    assert _feedback(runtime, token, 3)["accepted"] is True


def test_ledger_is_pruned_after_the_ttl(world, tmp_path: Path) -> None:
    runtime, _, clock = world
    token = _predict(runtime)["feedback_tokens"][0]  # type: ignore[index]
    _feedback(runtime, token, 3)
    clock.now += 2 * 3600
    with pytest.raises(ClientError) as caught:
        _feedback(runtime, token, 3)
    assert caught.value.code == "expired"
