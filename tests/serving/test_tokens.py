from __future__ import annotations

import base64

import pytest

from mlcanary.serving.tokens import InvalidTokenError, TokenSigner

SECRET = b"s" * 32


def test_round_trip_keeps_what_was_predicted() -> None:
    signer = TokenSigner(SECRET)
    tokens = signer.issue("digits", "v2", [3, 7], now=1000.5)
    first, second = (signer.verify(t) for t in tokens)
    assert (first.model, first.version, first.value, first.issued_at) == ("digits", "v2", 3, 1000.5)
    assert second.value == 7
    assert first.prediction_id != second.prediction_id


def test_a_token_carries_any_prediction_a_task_makes() -> None:
    signer = TokenSigner(SECRET)
    tokens = signer.issue("churn", "v7", ["yes", 12.5, [1.0, -2.25]], now=5.0)
    assert [signer.verify(t).value for t in tokens] == ["yes", 12.5, [1.0, -2.25]]


def test_another_replica_with_the_same_secret_verifies() -> None:
    token = TokenSigner(SECRET).issue("digits", "v1", [4], now=1.0)[0]
    assert TokenSigner(SECRET).verify(token).version == "v1"


def _forge_label(token: str) -> str:
    prefix, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = raw.replace(b",3,", b",5,")
    assert forged != raw
    return f"{prefix}.{base64.urlsafe_b64encode(forged).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(_forge_label, id="label-changed"),
        pytest.param(lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], id="bad-signature"),
        pytest.param(lambda t: "2" + t[1:], id="unknown-format"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="no-signature"),
        pytest.param(lambda t: "garbage", id="garbage"),
    ],
)
def test_tampered_tokens_are_refused(mangle: object) -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue("digits", "v1", [3], now=1.0)[0]
    with pytest.raises(InvalidTokenError):
        signer.verify(mangle(token))  # type: ignore[operator]


def test_token_from_another_secret_is_refused() -> None:
    token = TokenSigner(b"x" * 32).issue("digits", "v1", [3], now=1.0)[0]
    with pytest.raises(InvalidTokenError, match="signature"):
        TokenSigner(SECRET).verify(token)


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        TokenSigner(b"short")
