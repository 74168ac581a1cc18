"""The proxy process between two real backends on 127.0.0.1, driven through its admin API."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mlcanary.local.router.admin import IF_GENERATION_HEADER, LocalRouter
from mlcanary.local.router.app import GENERATION_HEADER, VERSION_HEADER
from mlcanary.rollout.routers import Route, RouteTable
from mlcanary.serving.launcher import free_port
from mlcanary.serving.tokens import TokenSigner
from tests.local.router.backend import MEDIA_TYPE
from tests.local.router.conftest import RunningProxy, StartProxy

REQUESTS = 2000
WORKERS = 16
# (completed requests before the shift, (v1 weight, v2 weight)); the proxy starts at 100/0.
SHIFTS = ((600, (90, 10)), (1300, (0, 100)))
LOAD_DEADLINE_S = 45.0


def _table(backends: dict[str, str], v1: int, v2: int) -> RouteTable:
    return RouteTable((Route("v1", backends["v1"], v1), Route("v2", backends["v2"], v2)))


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10.0, trust_env=False)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REQUESTS_TOTAL = "mlcanary_router_requests_total"


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _metric(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled series not created yet, as Prometheus reads it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def _get(proxy: RunningProxy, path: str) -> str:
    with _client(proxy.url) as client:
        return client.get(path).text


@dataclass(frozen=True)
class Outcome:
    status: int
    routed_to: str | None
    generation: int
    answered_by: str | None
    error: str | None = None


async def _load_while_shifting(proxy: str, backends: dict[str, str]) -> list[Outcome]:
    """REQUESTS predictions from WORKERS concurrent clients while SHIFTS change the weights."""
    router = LocalRouter(proxy)
    outcomes: list[Outcome] = []
    indices = iter(range(REQUESTS))  # shared: each request is sent by exactly one worker

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in indices:
            try:
                response = await client.post("/predict", json={"rows": [[0.0] * 64]})
                outcomes.append(
                    Outcome(
                        response.status_code,
                        response.headers.get(VERSION_HEADER),
                        int(response.headers.get(GENERATION_HEADER, "-1")),
                        response.json().get("version"),
                    )
                )
            except httpx.HTTPError as exc:
                outcomes.append(Outcome(-1, None, -1, None, repr(exc)))

    async def shifter() -> None:
        for completed, (v1, v2) in SHIFTS:
            while len(outcomes) < completed:
                await asyncio.sleep(0.005)
            await asyncio.to_thread(router.set_routes, _table(backends, v1, v2))

    limits = httpx.Limits(max_connections=WORKERS)
    async with (
        httpx.AsyncClient(base_url=proxy, timeout=10.0, limits=limits, trust_env=False) as client,
        asyncio.timeout(LOAD_DEADLINE_S),
    ):
        await asyncio.gather(shifter(), *(worker(client) for _ in range(WORKERS)))
    return outcomes


def test_weights_shift_under_load_without_a_failed_request(
    proxy: RunningProxy, backends: dict[str, str]
) -> None:
    """Every response says which table (generation) picked its version, so each phase's split is
    checked exactly: 100/0 and 0/100 without exception, 90/10 within one request of 10% (the
    smooth round-robin's bound for two routes), however the phases interleave in flight."""
    first = LocalRouter(proxy.url).routes().generation
    before = _samples(_get(proxy, "/-/metrics"))
    outcomes = asyncio.run(_load_while_shifting(proxy.url, backends))

    assert len(outcomes) == REQUESTS
    assert [o for o in outcomes if o.status != 200] == []
    assert all(o.routed_to == o.answered_by for o in outcomes)
    phases: dict[int, Counter[str | None]] = defaultdict(Counter)
    for outcome in outcomes:
        phases[outcome.generation][outcome.routed_to] += 1
    assert sorted(phases) == [first, first + 1, first + 2]
    assert all(sum(split.values()) >= 100 for split in phases.values()), phases
    assert set(phases[first]) == {"v1"}
    canary_phase = sum(phases[first + 1].values())
    assert abs(phases[first + 1]["v2"] - canary_phase * 10 / 100) <= 1, phases[first + 1]
    assert set(phases[first + 2]) == {"v2"}

    after = _samples(_get(proxy, "/-/metrics"))
    for version in ("v1", "v2"):
        labels = {"version": version, "endpoint": "/predict", "code": "200"}
        counted = _metric(after, REQUESTS_TOTAL, **labels) - _metric(
            before, REQUESTS_TOTAL, **labels
        )
        assert counted == sum(split[version] for split in phases.values())
    assert _metric(after, "mlcanary_router_weight", version="v2") == 100.0


def test_predict_returns_the_backends_status_body_and_content_type(proxy: RunningProxy) -> None:
    generation = LocalRouter(proxy.url).routes().generation
    with _client(proxy.url) as client:
        response = client.post("/predict", json={"status": 422})
    assert response.status_code == 422
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.json() == {"version": "v1", "content_type": "application/json"}
    assert response.headers[VERSION_HEADER] == "v1"
    assert response.headers[GENERATION_HEADER] == str(generation)


def test_feedback_reaches_the_version_in_its_token(
    proxy: RunningProxy, backends: dict[str, str]
) -> None:
    signer = TokenSigner(b"k" * 32)
    v1_token, v2_token = (signer.issue("digits", v, [3], now=time.time())[0] for v in ("v1", "v2"))
    router = LocalRouter(proxy.url)

    def send(client: httpx.Client, token: str) -> str:
        response = client.post("/feedback", json={"token": token, "label": 3})
        assert response.status_code == 200
        assert response.json()["token"] == token
        assert response.headers[VERSION_HEADER] == response.json()["received_by"]
        return str(response.json()["received_by"])

    with _client(proxy.url) as client:
        assert send(client, v2_token) == "v2"  # v2 at weight 0 still gets its feedback
        router.set_routes(_table(backends, 0, 100))
        assert send(client, v1_token) == "v1"
        assert send(client, v2_token) == "v2"
        router.set_routes(RouteTable((Route("v1", backends["v1"], 100),)))
        assert send(client, v2_token) == "v1"  # v2 has no route: the heaviest counts it
        assert send(client, "not-a-token") == "v1"
        no_token = client.post("/feedback", json={"label": 3})
        assert no_token.json()["received_by"] == "v1"


def test_a_restarted_proxy_keeps_its_weights(
    start_proxy: StartProxy, backends: dict[str, str]
) -> None:
    first = [f"v1={backends['v1']}=100", f"v2={backends['v2']}=0"]
    with start_proxy(first) as proxy:
        LocalRouter(proxy).set_routes(_table(backends, 70, 30))
    with start_proxy(first) as proxy:  # same state file, same command line
        assert LocalRouter(proxy).routes() == RouteTable(_table(backends, 70, 30).routes, 2)
        with _client(proxy) as client:
            split = Counter(client.post("/predict", json={}).json()["version"] for _ in range(100))
    assert split == Counter({"v1": 70, "v2": 30})


def test_upstream_failures_answer_502_or_504_and_are_counted(
    start_proxy: StartProxy, backends: dict[str, str]
) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    routes = [f"v1={backends['v1']}=100", f"v2={nothing_there}=0"]
    with start_proxy(routes, "--upstream-timeout", "0.5") as proxy, _client(proxy) as client:
        slow = client.post("/predict", json={"sleep": 1})
        LocalRouter(proxy).set_routes(
            RouteTable((Route("v1", backends["v1"], 0), Route("v2", nothing_there, 100)))
        )
        down = client.post("/predict", json={})
        samples = _samples(client.get("/-/metrics").text)

    assert (slow.status_code, slow.headers[VERSION_HEADER]) == (504, "v1")
    assert slow.json()["error"]["code"] == "upstream_timeout"
    assert (down.status_code, down.headers[VERSION_HEADER]) == (502, "v2")
    assert down.json()["error"]["code"] == "upstream_unavailable"
    errors = "mlcanary_router_upstream_errors_total"
    assert _metric(samples, errors, version="v1", kind="timeout") == 1.0
    assert _metric(samples, errors, version="v2", kind="connect") == 1.0
    requests = "mlcanary_router_requests_total"
    assert _metric(samples, requests, version="v1", endpoint="/predict", code="504") == 1.0
    assert _metric(samples, requests, version="v2", endpoint="/predict", code="502") == 1.0
    duration = "mlcanary_router_request_duration_seconds_count"
    assert _metric(samples, duration, version="v2", endpoint="/predict") == 1.0


def test_the_admin_api_validates_and_persists_before_answering(
    proxy: RunningProxy, backends: dict[str, str]
) -> None:
    saved = json.loads(proxy.state.read_text())
    with _client(proxy.url) as client:
        bad = _table(backends, 90, 10).to_json()
        bad["routes"][1]["weight"] = 20
        refused = client.put("/-/routes", json=bad)
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "routes"
        assert client.put("/-/routes", content=b"{").status_code == 400
        assert json.loads(proxy.state.read_text()) == saved

        only_v2 = {"routes": [{"version": "v2", "url": backends["v2"], "weight": 100}]}
        applied = client.put("/-/routes", json=only_v2)
        assert applied.status_code == 200
        assert applied.json()["generation"] == saved["generation"] + 1
        assert json.loads(proxy.state.read_text()) == applied.json()
        assert client.get("/-/routes").json() == applied.json()

        samples = _samples(client.get("/-/metrics").text)
        assert _metric(samples, "mlcanary_router_weight", version="v2") == 100.0
        assert ("mlcanary_router_weight", frozenset({("version", "v1")})) not in samples
        generation = float(applied.json()["generation"])
        assert _metric(samples, "mlcanary_router_table_generation") == generation
        assert client.get("/-/livez").status_code == 200
        assert client.get("/-/readyz").json()["status"] == "ready"


def test_a_put_naming_an_older_generation_is_refused_and_changes_nothing(
    proxy: RunningProxy, backends: dict[str, str]
) -> None:
    with _client(proxy.url) as client:
        read = client.get("/-/routes").json()
        moved = client.put("/-/routes", json=_table(backends, 80, 20).to_json())
        assert moved.status_code == 200
        stale = client.put(
            "/-/routes",
            json=_table(backends, 50, 50).to_json(),
            headers={IF_GENERATION_HEADER: str(read["generation"])},
        )
        assert stale.status_code == 412
        assert stale.json()["error"]["code"] == "stale_routes"
        assert client.get("/-/routes").json() == moved.json()
        assert json.loads(proxy.state.read_text()) == moved.json()
        garbled = client.put(
            "/-/routes",
            json=_table(backends, 50, 50).to_json(),
            headers={IF_GENERATION_HEADER: "x"},
        )
        assert garbled.status_code == 422
        assert garbled.json()["error"]["field"] == "generation"
        current = client.put(
            "/-/routes",
            json=_table(backends, 50, 50).to_json(),
            headers={IF_GENERATION_HEADER: str(moved.json()["generation"])},
        )
        assert current.status_code == 200
        assert current.json()["generation"] == moved.json()["generation"] + 1


def test_other_paths_and_methods_answer_json_errors(proxy: RunningProxy) -> None:
    with _client(proxy.url) as client:
        missing = client.post("/v1/predict", json={})
        wrong_method = client.get("/predict")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (
        405,
        "method_not_allowed",
    )
