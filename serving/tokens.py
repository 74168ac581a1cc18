"""Signed feedback tokens: the prediction travels with the client, not in server memory.

A token carries the model, the version that predicted, a unique prediction id, the prediction
(a class label, a number, or several numbers) and the time, under an HMAC shared by every replica
of every version of the model. Any
replica can therefore verify feedback that arrives minutes later, after a restart, or at a
different replica, and count it for the version that made the prediction, while a client cannot
forge one or change what it says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["InvalidTokenError", "Prediction", "TokenSigner"]

_VERSION = "1"


class InvalidTokenError(ValueError):
    """The token is malformed or its signature does not match."""


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    prediction_id: str
    value: Any  # what the version predicted: a class label, a number or a list of numbers
    issued_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the feedback secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, f"{_VERSION}.{payload}".encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, model: str, version: str, predictions: list[Any], now: float) -> list[str]:
        tokens = []
        for prediction in predictions:
            body = [model, version, secrets.token_hex(12), prediction, round(now, 3)]
            payload = _b64(orjson.dumps(body))
            tokens.append(f"{_VERSION}.{payload}.{self._sign(payload)}")
        return tokens

    def verify(self, token: str) -> Prediction:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise InvalidTokenError("feedback token is malformed")
        _, payload, signature = parts
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidTokenError("feedback token signature does not match")
        try:
            model, version, prediction_id, value, issued_at = orjson.loads(_unb64(payload))
            return Prediction(str(model), str(version), str(prediction_id), value, float(issued_at))
        except (ValueError, TypeError) as exc:
            raise InvalidTokenError("feedback token payload is malformed") from exc
