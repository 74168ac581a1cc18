"""The in-cluster controller through the official client against the API server double, with
the manifests `mlcanary k8s render` writes and scripted metrics on a fake clock."""

from __future__ import annotations

from typing import Any

from mlcanary.k8s import crd
from tests.k8s import scenarios
from tests.k8s.cluster import NAME, NAMESPACE, Cluster, rollout_document


def _condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    condition = next(c for c in status["conditions"] if c["type"] == kind)
    return condition["status"], condition["reason"]


def test_a_good_canary_is_promoted_10_then_100_through_the_httproute(cluster: Cluster) -> None:
    outcome = scenarios.rollout(cluster, "gateway-api")
    assert outcome.weights == [
        {"v1": 100, "v2": 0},
        {"v1": 90, "v2": 10},
        {"v1": 0, "v2": 100},
        {"v2": 100},
    ]
    assert outcome.status["phase"] == "Succeeded"
    assert outcome.status["weights"] == {"stable": 0, "canary": 100}
    assert outcome.status["observedGeneration"] == cluster.rollout()["metadata"]["generation"]
    assert _condition(outcome.status, "Progressing") == ("False", "Succeeded")
    assert _condition(outcome.status, "Degraded") == ("False", "AsExpected")
    assert _condition(outcome.status, "Promoted") == ("True", "Succeeded")
    assert [a["action"] for a in outcome.status["history"] if a["action"] != "hold"] == [
        "advance",
        "promote",
    ]
    assert outcome.replicas["v1"] == 0  # the old stable is retired
    assert [(kind, reason) for kind, reason, _ in outcome.events] == [
        ("Normal", "Started"),
        ("Normal", "Advanced"),
        ("Normal", "Promoted"),
    ]


def test_a_regressed_canary_is_rolled_back_to_stable_100(cluster: Cluster) -> None:
    outcome = scenarios.rollout(cluster, "gateway-api", canary_accuracy=0.85)
    assert outcome.weights[1] == {"v1": 90, "v2": 10}
    assert outcome.weights[-1] == {"v1": 100}
    assert max(w.get("v2", 0) for w in outcome.weights) == 10
    assert outcome.status["phase"] == "RolledBack"
    assert "accuracy" in outcome.status["message"]
    assert _condition(outcome.status, "Degraded") == ("True", "RolledBack")
    assert outcome.replicas["v2"] == 0
    assert ("Warning", "RolledBack") in [(kind, reason) for kind, reason, _ in outcome.events]


def test_a_status_write_conflict_is_retried_and_loses_nothing(cluster: Cluster) -> None:
    outcome = scenarios.status_conflicts(cluster, conflicts=2)
    assert outcome.extra["status_writes"] == 3  # two refused, the third one stored
    [report] = outcome.extra["reports"]
    assert report.problem is None
    assert outcome.status["phase"] == "Progressing"
    assert [record["action"] for record in outcome.status["history"]] == ["hold"]
    assert outcome.weights == [{"v1": 90, "v2": 10}]


def test_conflicts_beyond_the_retries_leave_the_rollout_for_the_next_tick(
    cluster: Cluster,
) -> None:
    outcome = scenarios.status_conflicts(cluster, conflicts=10)
    [report] = outcome.extra["reports"]
    assert "status changed meanwhile" in (report.problem or "")
    assert outcome.status.get("phase") is None  # nothing half-written
    assert outcome.weights == [{"v1": 100, "v2": 0}]  # and no traffic moved


def test_a_new_controller_resumes_mid_rollout_at_the_same_step(cluster: Cluster) -> None:
    outcome = scenarios.restart(cluster, first_ticks=6)
    before, after = outcome.extra["before"], outcome.extra["after_one_tick"]
    assert (before["phase"], before["stepIndex"]) == ("Progressing", 1)
    assert after["stepIndex"] == before["stepIndex"]
    assert after["stepStartedAt"] == before["stepStartedAt"]  # not restarted
    assert after["history"][: len(before["history"])] == before["history"]
    starts = [r for r in after["history"] if "started" in r["message"]]
    assert len(starts) == 1
    assert outcome.weights[0] == {"v1": 0, "v2": 100}  # the route kept the step's weights
    assert outcome.status["phase"] == "Succeeded"


def test_a_canary_that_never_becomes_ready_is_rolled_back_at_max_duration(
    cluster: Cluster,
) -> None:
    outcome = scenarios.never_ready(cluster)
    assert outcome.weights == [{"v1": 100, "v2": 0}, {"v1": 100}]  # no traffic ever to v2
    assert outcome.status["phase"] == "RolledBack"
    assert "maxDuration 2m" in outcome.status["message"]
    problems = [message for kind, reason, message in outcome.events if reason == "TickProblem"]
    assert problems
    assert "digits-v2 is not ready" in problems[0]
    assert ("Warning", "RolledBack") in [(kind, reason) for kind, reason, _ in outcome.events]


def test_deleting_the_rollout_stops_its_loop_and_leaves_the_route(cluster: Cluster) -> None:
    outcome = scenarios.deletion(cluster)
    assert outcome.extra["failures"] == []
    route_before, route_after = outcome.weights
    assert route_after == route_before == {"v1": 90, "v2": 10}
    assert {(r.resource, r.verb) for r in outcome.extra["later"]} <= {
        (crd.PLURAL, "watch"),
        (crd.PLURAL, "list"),
    }


def test_the_istio_router_moves_virtualservice_weights(cluster: Cluster) -> None:
    outcome = scenarios.rollout(cluster, "istio")
    assert outcome.weights == [
        {"v1": 100, "v2": 0},
        {"v1": 90, "v2": 10},
        {"v1": 0, "v2": 100},
        {"v2": 100},
    ]
    assert outcome.status["phase"] == "Succeeded"


def test_the_replicas_router_carries_the_split_in_replica_counts(cluster: Cluster) -> None:
    outcome = scenarios.rollout(cluster, "replicas", replicas=10)
    assert outcome.weights == [
        {"v1": 10, "v2": 0},  # as rendered: all on stable
        {"v1": 9, "v2": 1},  # 10%
        {"v1": 0, "v2": 10},  # 100%
    ]
    assert outcome.status["phase"] == "Succeeded"


def test_abort_by_annotation_rolls_back_once(cluster: Cluster) -> None:
    outcome = scenarios.command(cluster, "abort")
    assert outcome.extra["phases"] == ["RolledBack"] * 3
    assert outcome.status["lastCommand"] == outcome.extra["annotation"]
    assert outcome.weights[-1] == {"v1": 100}
    assert "rolled back by a person" in outcome.status["message"]


def test_a_rollout_that_cannot_run_in_a_cluster_is_marked_failed(cluster: Cluster) -> None:
    outcome = scenarios.invalid_spec(cluster)
    assert outcome.extra["active"] == []
    assert outcome.status["phase"] == "Failed"
    assert "spec.router.type" in outcome.status["message"]
    assert [reason for _, reason, _ in outcome.events] == ["InvalidSpec"]
    assert outcome.weights == [{"v1": 100, "v2": 0}]


def test_an_expired_watch_lists_again_and_misses_no_change(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    controller = cluster.controller(drain_s=0, watch_timeout_s=1)
    with scenarios.looping(controller) as failures:
        scenarios.wait_for(lambda: cluster.status().get("phase") == "Progressing")
        lists_before = sum(r.verb == "list" for r in cluster.double.requests)
        cluster.double.compact()  # the open watch's resourceVersion is now too old
        cluster.custom.patch_namespaced_custom_object(
            crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
            {"spec": {"analysis": {"maxDuration": "3m"}}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        cluster.clock.sleep(10)
        scenarios.wait_for(lambda: cluster.status().get("observedGeneration") == 2)
    assert failures == []
    assert sum(r.verb == "list" for r in cluster.double.requests) > lists_before
