"""Version Deployments as workloads: readiness, scale-up from 0, retirement."""

from __future__ import annotations

import pytest

from mlcanary.k8s.workloads import KubernetesWorkloads
from mlcanary.rollout.workloads import WorkloadNotReadyError
from tests.k8s.cluster import MODEL, NAMESPACE, Cluster, rollout_document


def test_a_ready_version_is_served_by_its_service(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"))
    assert KubernetesWorkloads(cluster.apps, NAMESPACE).ensure(MODEL, "v1") == "digits-v1"


def test_a_version_is_not_ready_until_its_generation_is_observed(cluster: Cluster) -> None:
    cluster.install(rollout_document("gateway-api"), ready=[])
    workloads = KubernetesWorkloads(cluster.apps, NAMESPACE)
    with pytest.raises(WorkloadNotReadyError, match="generation 1 not yet observed"):
        workloads.ensure(MODEL, "v2")
    cluster.double.mark_ready(NAMESPACE, "digits-v2", ready=0)
    with pytest.raises(WorkloadNotReadyError, match="no ready pod"):
        workloads.ensure(MODEL, "v2")
    cluster.mark_ready("v2")
    assert workloads.ensure(MODEL, "v2") == "digits-v2"


def test_a_missing_deployment_is_named(cluster: Cluster) -> None:
    with pytest.raises(WorkloadNotReadyError, match="Deployment serving/digits-v7 does not exist"):
        KubernetesWorkloads(cluster.apps, NAMESPACE).ensure(MODEL, "v7")


def test_a_retired_version_is_scaled_to_0_and_back_up_when_needed_again(
    cluster: Cluster,
) -> None:
    cluster.install(rollout_document("gateway-api"))
    workloads = KubernetesWorkloads(cluster.apps, NAMESPACE, replicas=2)
    workloads.retire(MODEL, "v2")
    assert cluster.replicas()["v2"] == 0
    with pytest.raises(WorkloadNotReadyError, match="was at 0 replicas: scaled to 2"):
        workloads.ensure(MODEL, "v2")
    assert cluster.replicas()["v2"] == 2
    cluster.mark_ready("v2")
    assert workloads.ensure(MODEL, "v2") == "digits-v2"


def test_under_the_replicas_router_replica_counts_are_left_to_the_router(
    cluster: Cluster,
) -> None:
    cluster.install(rollout_document("replicas"), ready=[])
    workloads = KubernetesWorkloads(cluster.apps, NAMESPACE, router_scales=True)
    assert workloads.ensure(MODEL, "v2") == "digits-v2"
    assert cluster.replicas()["v2"] == 0
