"""A bake in the cluster: after 100% the old stable's Deployment stays, at weight 0, until the
bake ends quietly; only then is it scaled to 0 (never deleted)."""

from __future__ import annotations

from typing import Any

from tests.k8s.cluster import Cluster, drive, rollout_document
from tests.rollout.test_controller import stream


def test_the_old_stable_is_kept_through_the_bake_and_retired_after(cluster: Cluster) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["promotion"] = {"bake": "1m"}
    cluster.install(document)
    seen: list[tuple[Any, int, dict[str, int]]] = []

    def observe() -> None:
        replicas = cluster.replicas()["v1"]
        seen.append((cluster.status().get("phase"), replicas, cluster.httproute_weights()))

    controller = cluster.controller(stream(60, 0.97), drain_s=0)
    drive(cluster, controller, observe)
    controller.close()
    baking = [(replicas, weights) for phase, replicas, weights in seen if phase == "Baking"]
    assert len(baking) >= 5  # a minute of 10 s ticks
    assert all(replicas > 0 and weights == {"v1": 0, "v2": 100} for replicas, weights in baking)
    assert seen[-1][0] == "Succeeded"
    assert cluster.replicas()["v1"] == 0  # scaled down once the bake ended
    assert cluster.deployment("digits-v1")  # and still there
