"""One request's bad rows never fail another's: poison rows under concurrent load, on a real
server, where batched neighbours used to fail with them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import StartServer
from tests.serving.promtext import metric

pytestmark = pytest.mark.integration

VALID = [float(i % 17) for i in range(64)]
# Finite float64 values the scikit-learn scaler turns into infinities, which the model refuses.
POISON = [1.797e308] * 64
VALID_REQUESTS, POISON_EVERY, CONCURRENCY = 900, 30, 32


async def _load(url: str) -> tuple[list[int], list[tuple[int, str]]]:
    bodies = [
        {"instances": [POISON if i % POISON_EVERY == POISON_EVERY - 1 else VALID]}
        for i in range(VALID_REQUESTS + VALID_REQUESTS // (POISON_EVERY - 1))
    ]
    valid: list[int] = []
    poison: list[tuple[int, str]] = []
    slots = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(body: dict[str, list[list[float]]]) -> None:
            async with slots:
                response = await client.post("/predict", json=body)
            if body["instances"][0] is POISON:
                poison.append((response.status_code, response.json()["error"]["code"]))
            else:
                valid.append(response.status_code)

        await asyncio.gather(*(one(body) for body in bodies))
    return valid, poison


def test_poison_rows_fail_alone_under_concurrent_load(trained, start_server: StartServer) -> None:
    with start_server("digits:v1") as url:
        valid, poison = asyncio.run(_load(url))
        assert len(valid) >= VALID_REQUESTS
        assert [code for code in valid if code != 200] == []
        assert set(poison) == {(422, "model_rejected_input")}
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200  # no worker died
        assert metric(url, "mlcanary_model_input_rejections_total") == len(poison)
        assert metric(url, "mlcanary_http_requests_total", code="500") == 0
