"""The metrics providers against httpx.MockTransport: the queries they send, what they make of
the answers, and how a failure reads (missing data, never zero)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mlcanary.metrics.prometheus import PrometheusProvider, promql_string
from mlcanary.metrics.scrape import ScrapeProvider
from mlcanary.rollout.metrics.base import MetricsUnavailableError, Target

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = Target("digits", "v1", "v2")


def _vector(*rows: tuple[dict[str, str], float]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [NOW.timestamp(), str(v)]} for m, v in rows],
        },
    }


def _answer(query: str) -> dict[str, object]:
    version = "v1" if 'version="v1"' in query else "v2"
    scale = 9.0 if version == "v1" else 1.0
    if "mlcanary_predictions_total" in query:
        return _vector(({}, 100 * scale))
    if "mlcanary_feedback_total" in query:
        if version == "v2":
            return _vector(({"outcome": "correct"}, 40.0))  # no incorrect series exported yet
        return _vector(({"outcome": "correct"}, 850.0), ({"outcome": "incorrect"}, 50.0))
    if "absolute_error" in query or "squared_error" in query:
        return _vector()  # a classifier exports no error sums: missing, not zero
    if "mlcanary_http_requests_total" in query:
        return _vector(
            ({"code": "200"}, 95 * scale), ({"code": "422"}, 4.0), ({"code": "503"}, 1.0)
        )
    return _vector(({"le": "0.01"}, 90 * scale), ({"le": "+Inf"}, 100 * scale))


def test_prometheus_queries_are_escaped_and_answers_parsed() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        queries.append(query)
        return httpx.Response(200, json=_answer(query))

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    observation = provider.observe(TARGET, NOW)
    provider.close()
    assert observation.stable.predictions == 900
    assert (observation.canary.feedback_correct, observation.canary.feedback_incorrect) == (40, 0)
    assert observation.stable.requests == 95 * 9 + 5
    assert (observation.canary.server_errors, observation.canary.client_errors) == (1, 4)
    assert observation.canary.latency_buckets == {0.01: 90.0, math.inf: 100.0}
    assert all('model="digits"' in q for q in queries)
    assert any('endpoint="/predict"' in q for q in queries)
    assert observation.canary.absolute_error_sum is None
    assert len(queries) == 15  # 7 per version, and the canary's shadow comparisons


def test_a_regressors_error_sums_are_read() -> None:
    sums = {
        "mlcanary_feedback_absolute_error_sum": 120.0,
        "mlcanary_feedback_squared_error_total": 900.0,
        "mlcanary_feedback_squared_error_squares_total": 70000.0,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        if "mlcanary_feedback_total" in query:
            return httpx.Response(200, json=_vector(({"outcome": "measured"}, 20.0)))
        for name, value in sums.items():
            if name in query:
                return httpx.Response(200, json=_vector(({}, value)))
        return httpx.Response(200, json=_answer(query))

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    canary = provider.observe(TARGET, NOW).canary
    provider.close()
    assert (canary.feedback_measured, canary.feedback_correct) == (20.0, 0.0)
    assert (canary.absolute_error_sum, canary.squared_error_sum) == (120.0, 900.0)
    assert canary.squared_error_squares_sum == 70000.0


def test_a_failed_query_is_missing_data_not_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        if "feedback" in query:
            return httpx.Response(422, json={"status": "error", "error": "bad query"})
        return httpx.Response(200, json=_answer(query))

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    observation = provider.observe(TARGET, NOW)
    provider.close()
    assert observation.canary.feedback_correct is None
    assert observation.canary.predictions == 100


def test_an_unreachable_prometheus_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    with pytest.raises(MetricsUnavailableError, match="unreachable"):
        provider.observe(TARGET, NOW)
    provider.close()


@pytest.mark.parametrize("value", ['v1"} or vector(1) #', "V1", "v1\n", ""])
def test_targets_refuse_label_values_that_could_change_a_query(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        Target("digits", value, "v2")


@pytest.mark.parametrize(
    ("raw", "literal"),
    [("v1", '"v1"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("a\nb", '"a\\nb"')],
)
def test_promql_string_literals(raw: str, literal: str) -> None:
    assert promql_string(raw) == literal


METRICS_V1 = """
mlcanary_predictions_total{model="digits",version="v1"} 10.0
mlcanary_feedback_total{model="digits",outcome="correct",version="v1"} 9.0
mlcanary_feedback_total{model="digits",outcome="incorrect",version="v1"} 1.0
mlcanary_feedback_total{model="digits",outcome="correct",version="v2"} 2.0
mlcanary_http_requests_total{code="200",endpoint="/predict",model="digits",version="v1"} 10.0
""" + "\n".join(
    f'mlcanary_http_request_duration_seconds_bucket{{endpoint="/predict",le="{le}",'
    f'model="digits",version="v1"}} {count}'
    for le, count in (("0.01", 8.0), ("+Inf", 10.0))
)
METRICS_V2 = """
mlcanary_predictions_total{model="digits",version="v2"} 3.0
mlcanary_feedback_total{model="digits",outcome="correct",version="v2"} 1.0
mlcanary_http_requests_total{code="200",endpoint="/predict",model="digits",version="v2"} 2.0
mlcanary_http_requests_total{code="500",endpoint="/predict",model="digits",version="v2"} 1.0
"""


def test_scrape_sums_each_version_over_every_service() -> None:
    pages = {"a": METRICS_V1, "b": METRICS_V2}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=pages[request.url.host])

    provider = ScrapeProvider(
        lambda: ["http://a", "http://b"], transport=httpx.MockTransport(handler)
    )
    observation = provider.observe(TARGET, NOW)
    provider.close()
    assert observation.stable.feedback_correct == 9
    assert observation.canary.feedback_correct == 3  # one counted by v1's server, two by v2's
    assert (observation.canary.requests, observation.canary.server_errors) == (3, 1)
    assert observation.stable.latency_buckets == {0.01: 8.0, math.inf: 10.0}


def test_scrape_with_one_service_down_reports_no_data() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "b":
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(200, text=METRICS_V1)

    provider = ScrapeProvider(
        lambda: ["http://a", "http://b"], transport=httpx.MockTransport(handler)
    )
    observation = provider.observe(TARGET, NOW)
    provider.close()
    assert observation.stable.predictions is None
    assert observation.canary.predictions is None


def test_a_metric_checks_query_is_run_once_per_version_with_its_placeholders_filled_in() -> None:
    queries: list[str] = []
    answers = {
        'version="v1"}[1m]': _vector(({}, 0.25)),
        'version="v2"}[1m]': _vector(({"pod": "a"}, 0.2), ({"pod": "b"}, 0.3)),  # two series
    }

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        queries.append(query)
        for suffix, answer in answers.items():
            if query.startswith("conversion") and query.endswith(suffix + ")"):
                return httpx.Response(200, json=answer)
        return httpx.Response(200, json=_answer(query))

    template = (
        'conversion(x{model="{{ model }}",ns="{{namespace}}",version="{{ version }}"}'
        "[{{ interval }}])"
    )
    target = Target(
        "digits", "v1", "v2", queries=(("conversion", template),), namespace="ml", interval="1m"
    )
    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    observation = provider.observe(target, NOW)
    provider.close()
    assert [q for q in queries if q.startswith("conversion")] == [
        'conversion(x{model="digits",ns="ml",version="v2"}[1m])',
        'conversion(x{model="digits",ns="ml",version="v1"}[1m])',
    ]
    values = observation.metrics["conversion"]
    # Stable's single series is its value; two series for the canary are no value at all.
    assert (values.stable, values.canary) == (0.25, None)


SHADOW_ROWS = [
    ({"__name__": "mlcanary_shadow_comparisons_total", "outcome": "agree"}, 90.0),
    ({"__name__": "mlcanary_shadow_comparisons_total", "outcome": "disagree"}, 10.0),
    ({"__name__": "mlcanary_shadow_flips_total", "baseline_class": "3", "class": "8"}, 7.0),
    ({"__name__": "mlcanary_shadow_flips_total", "baseline_class": "1", "class": "(other)"}, 3.0),
    ({"__name__": "mlcanary_shadow_copies_total", "outcome": "compared"}, 50.0),
    ({"__name__": "mlcanary_shadow_copies_total", "outcome": "dropped"}, 2.0),
    ({"__name__": "mlcanary_shadow_copies_total", "outcome": "timeout"}, 1.0),
]


def test_prometheus_reads_the_shadow_comparisons_of_the_version_pair_in_one_query() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        if "mlcanary_shadow_" in query:
            queries.append(query)
            return httpx.Response(200, json=_vector(*SHADOW_ROWS))
        return httpx.Response(200, json=_answer(query))

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    canary = provider.observe(TARGET, NOW).canary
    provider.close()
    [query] = queries
    assert 'version="v2",baseline="v1"' in query
    assert (canary.shadow_agreed, canary.shadow_disagreed, canary.shadow_lost) == (90, 10, 3)
    assert canary.shadow_flips == {"1\u2192(other)": 3.0, "3\u21928": 7.0}
    assert (canary.shadow_measured, canary.shadow_difference_sum) == (0.0, 0.0)  # none yet


def test_a_failed_shadow_query_is_missing_data_not_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        if "mlcanary_shadow_" in query:
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, json=_answer(query))

    provider = PrometheusProvider("http://prom:9090", transport=httpx.MockTransport(handler))
    canary = provider.observe(TARGET, NOW).canary
    provider.close()
    assert (canary.shadow_agreed, canary.shadow_flips) == (None, None)


STABLE_PAGE = """
mlcanary_shadow_comparisons_total{baseline="v1",model="digits",outcome="agree",version="v2"} 40.0
mlcanary_shadow_comparisons_total{baseline="v1",model="digits",outcome="disagree",version="v2"} 2.0
mlcanary_shadow_comparisons_total{baseline="v0",model="digits",outcome="disagree",version="v2"} 9.0
mlcanary_shadow_flips_total{baseline="v1",baseline_class="4",class="9",model="digits",\
version="v2"} 2.0
mlcanary_shadow_copies_total{baseline="v1",model="digits",outcome="failed",version="v2"} 1.0
"""


def test_scrape_counts_the_pairs_comparisons_for_the_canary_from_stables_page() -> None:
    pages = {"a": METRICS_V1 + STABLE_PAGE, "b": METRICS_V2}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=pages[request.url.host])

    provider = ScrapeProvider(
        lambda: ["http://a", "http://b"], transport=httpx.MockTransport(handler)
    )
    canary = provider.observe(TARGET, NOW).canary
    provider.close()
    assert (canary.shadow_agreed, canary.shadow_disagreed, canary.shadow_lost) == (40, 2, 1)
    assert canary.shadow_flips == {"4\u21929": 2.0}
