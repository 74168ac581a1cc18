"""A ledger on a Redis server, shared by every replica on every machine (pods of a Deployment).

Why Redis: a claim is one ``SET key value NX EX ttl``, atomic on the server, so two replicas
receiving the same token at the same instant cannot both count it; the expiry equals the token's
lifetime, after which the token is refused as expired anyway, so the ledger never grows beyond
the labels of one token lifetime and needs no pruning. redis-py is the maintained client.

A server that cannot be reached, or does not answer within a second, makes `claim` raise
`LedgerUnavailableError`: the feedback is refused with a 503 and counted as refused, never
counted without its claim being recorded. Predictions do not touch the ledger and go on.
"""

from __future__ import annotations

import redis

from mlcanary.serving.ledger import LedgerUnavailableError

__all__ = ["RedisLedger", "open"]

_TIMEOUT_S = 1.0


class RedisLedger:
    def __init__(
        self, client: redis.Redis, ttl_s: float, prefix: str = "mlcanary:feedback:"
    ) -> None:
        self._client = client
        self._ttl_s = max(1, round(ttl_s))
        self._prefix = prefix

    def claim(self, prediction_id: str, version: str, now: float) -> bool:
        try:
            created = self._client.set(
                f"{self._prefix}{prediction_id}", version, nx=True, ex=self._ttl_s
            )
        except redis.RedisError as exc:
            raise LedgerUnavailableError(f"the Redis ledger did not answer: {exc}") from exc
        return bool(created)

    def forget_before(self, cutoff: float) -> int:
        """Claims expire by themselves, a token lifetime after they were made."""
        return 0

    def close(self) -> None:
        self._client.close()


def open(url: str, ttl_s: float) -> RedisLedger:
    client = redis.Redis.from_url(
        url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S, retry_on_timeout=False
    )
    return RedisLedger(client, ttl_s)
