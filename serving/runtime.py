"""What one serving worker does for each request, apart from HTTP itself."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from mlcanary.models.registry import ModelVersion
from mlcanary.models.task import ClassificationOutput
from mlcanary.serving.batching import MicroBatcher
from mlcanary.serving.errors import ClientError, UnavailableError
from mlcanary.serving.ledger import FeedbackLedger, LedgerUnavailableError
from mlcanary.serving.metrics import ServingMetrics
from mlcanary.serving.payloads import parse_feedback, parse_predict
from mlcanary.serving.shadow import ShadowCopier
from mlcanary.serving.tokens import InvalidTokenError, TokenSigner

__all__ = ["FeedbackLimits", "ModelRuntime"]

_PRUNE_EVERY_S = 600.0
_CLOCK_SKEW_S = 300.0


@dataclass(frozen=True)
class FeedbackLimits:
    ttl_s: float
    labeler_key: bytes = field(repr=False)


class ModelRuntime:
    def __init__(
        self,
        version: ModelVersion,
        batcher: MicroBatcher,
        signer: TokenSigner,
        ledger: FeedbackLedger,
        metrics: ServingMetrics,
        *,
        max_batch: int,
        max_body_bytes: int,
        max_inflight: int,
        feedback: FeedbackLimits,
        shadow: ShadowCopier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.version = version
        self.metrics = metrics
        self._batcher = batcher
        self._signer = signer
        self._ledger = ledger
        self._max_batch = max_batch
        self.max_body_bytes = max_body_bytes
        self.max_inflight = max_inflight
        self._feedback = feedback
        self._shadow = shadow
        self._clock = clock
        self._last_prune = 0.0

    async def predict(self, body: bytes) -> bytes:
        rows = parse_predict(body, self.version.schema, self._max_batch)
        try:
            predictions = await self._batcher.predict(rows)
        except ValueError as exc:
            # The model refused these rows alone (the batcher has retried them apart from their
            # neighbours): scikit-learn's and onnxruntime's input checks raise ValueError for
            # values the schema cannot rule out, like an overflow inside a scaler.
            self.metrics.input_rejected()
            raise ClientError(
                422, "model_rejected_input", f"the model refused this input: {exc}", "instances"
            ) from None
        self.metrics.predicted(len(predictions.values))
        if self._shadow is not None:  # after the answer is final: a copy never changes it
            self._shadow.offer(body, predictions.values)
        ref = self.version.ref
        answer: dict[str, object] = {
            "model": ref.name,
            "version": ref.version,
            "predictions": predictions.values,
        }
        output = self.version.output
        if predictions.probabilities is not None and isinstance(output, ClassificationOutput):
            answer["classes"] = output.classes
            answer["probabilities"] = predictions.probabilities
        answer["feedback_tokens"] = self._signer.issue(
            ref.name, ref.version, predictions.values, self._clock()
        )
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

    def feedback(self, body: bytes, credential: str | None) -> bytes:
        """Count a true label for the version that predicted; raise ClientError otherwise.

        ``credential`` is the caller's bearer key. Every refusal is counted by reason, and none
        of them reaches the accuracy counters.
        """
        if credential is None or not hmac.compare_digest(
            credential.encode(), self._feedback.labeler_key
        ):
            self.metrics.feedback_rejected("unauthorized")
            raise ClientError(
                401,
                "unauthorized",
                "feedback needs the labeler key: Authorization: Bearer <MLCANARY_LABELER_KEY>",
                headers={"WWW-Authenticate": 'Bearer realm="feedback"'},
            )
        try:
            request = parse_feedback(body, self.version.output)
        except ClientError:
            self.metrics.feedback_rejected("malformed")
            raise
        try:
            prediction = self._signer.verify(request.token)
        except InvalidTokenError as exc:
            self.metrics.feedback_rejected("invalid_token")
            raise ClientError(403, "invalid_token", str(exc), "token") from None
        now = self._clock()
        if prediction.model != self.version.ref.name:
            self.metrics.feedback_rejected("wrong_model")
            raise ClientError(
                422,
                "wrong_model",
                f"the token is for model {prediction.model}, not {self.version.ref.name}",
                "token",
            )
        if prediction.issued_at > now + _CLOCK_SKEW_S:
            self.metrics.feedback_rejected("invalid_token")
            raise ClientError(403, "invalid_token", "the token was issued in the future", "token")
        if now - prediction.issued_at > self._feedback.ttl_s:
            self.metrics.feedback_rejected("expired")
            raise ClientError(
                410, "expired", f"feedback is accepted for {self._feedback.ttl_s:.0f}s", "token"
            )
        self._prune(now)
        try:
            claimed = self._ledger.claim(prediction.prediction_id, prediction.version, now)
        except LedgerUnavailableError as exc:
            self.metrics.feedback_rejected("ledger_unavailable")
            raise UnavailableError("ledger_unavailable", str(exc)) from None
        if not claimed:
            self.metrics.feedback_rejected("duplicate")
            raise ClientError(
                409, "duplicate", "feedback for this prediction was already counted", "token"
            )
        judgement = self.version.output.judge(prediction.value, request.label)
        self.metrics.feedback(prediction.version, judgement)
        answer: dict[str, object] = {
            "accepted": True,
            "model": prediction.model,
            "version": prediction.version,
        }
        if judgement.correct is not None:
            answer["correct"] = judgement.correct
        else:
            answer["absolute_error"] = judgement.absolute_error
            answer["squared_error"] = judgement.squared_error
        return orjson.dumps(answer)

    def _prune(self, now: float) -> None:
        if now - self._last_prune >= _PRUNE_EVERY_S:
            self._last_prune = now
            self._ledger.forget_before(now - self._feedback.ttl_s)

    def close(self) -> None:
        self._ledger.close()
