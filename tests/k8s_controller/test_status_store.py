"""The status subresource as the status store, and commands as an annotation."""

from __future__ import annotations

import pytest

from mlcanary.k8s import crd
from mlcanary.k8s.status_store import COMMAND_ANNOTATION, ModelRolloutStatusStore
from mlcanary.rollout.status import Phase, RolloutStatus
from mlcanary.rollout.store.base import Command, ConflictError
from tests.k8s_controller.cluster import NAME, NAMESPACE, Cluster, rollout_document


@pytest.fixture
def store(cluster: Cluster) -> ModelRolloutStatusStore:
    cluster.install(rollout_document("gateway-api"))
    return ModelRolloutStatusStore(cluster.custom, NAMESPACE, cluster.clock)


def test_a_saved_status_is_loaded_back_with_its_generation(
    cluster: Cluster, store: ModelRolloutStatusStore
) -> None:
    fresh = store.load(NAME)
    assert fresh is not None
    assert fresh.status == RolloutStatus()
    saved = store.save(NAME, RolloutStatus(phase=Phase.PROGRESSING, message="m"), fresh.revision)
    assert saved.revision != fresh.revision
    loaded = store.load(NAME)
    assert loaded is not None
    assert loaded.revision == saved.revision
    assert loaded.status.phase is Phase.PROGRESSING
    assert cluster.status()["observedGeneration"] == 1
    assert {c["type"] for c in cluster.status()["conditions"]} == {"Progressing", "Degraded"}


def test_a_save_over_a_newer_revision_is_a_conflict(store: ModelRolloutStatusStore) -> None:
    first = store.load(NAME)
    assert first is not None
    store.save(NAME, RolloutStatus(message="a"), first.revision)
    with pytest.raises(ConflictError, match="changed since"):
        store.save(NAME, RolloutStatus(message="b"), first.revision)
    assert store.conflicts == 1
    current = store.load(NAME)
    assert current is not None
    assert current.status.message == "a"


def test_an_unknown_rollout_loads_as_none(store: ModelRolloutStatusStore) -> None:
    assert store.load("absent") is None
    assert store.names() == [NAME]


def test_a_command_is_carried_out_once_recorded_in_the_same_write(
    cluster: Cluster, store: ModelRolloutStatusStore
) -> None:
    store.request(NAME, Command.PAUSE)
    loaded = store.load(NAME)
    assert loaded is not None
    assert store.take_command(NAME) is Command.PAUSE
    store.save(NAME, loaded.status, loaded.revision)
    again = store.load(NAME)
    assert again is not None
    assert store.take_command(NAME) is None
    annotation = cluster.rollout()["metadata"]["annotations"][COMMAND_ANNOTATION]
    assert again.status.last_command == annotation


def test_a_command_taken_by_a_save_that_conflicted_is_taken_again(
    store: ModelRolloutStatusStore,
) -> None:
    store.request(NAME, Command.ABORT)
    stale = store.load(NAME)
    assert stale is not None
    store.save(NAME, RolloutStatus(message="someone else"), stale.revision)
    store.load(NAME)
    assert store.take_command(NAME) is Command.ABORT
    with pytest.raises(ConflictError):
        store.save(NAME, RolloutStatus(), stale.revision)
    store.load(NAME)
    assert store.take_command(NAME) is Command.ABORT


def test_an_unreadable_command_is_ignored_once(
    cluster: Cluster, store: ModelRolloutStatusStore
) -> None:
    cluster.custom.patch_namespaced_custom_object(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
        {"metadata": {"annotations": {COMMAND_ANNOTATION: "rewind"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    loaded = store.load(NAME)
    assert loaded is not None
    assert store.take_command(NAME) is None
    store.save(NAME, loaded.status, loaded.revision)
    assert cluster.status()["lastCommand"] == "rewind"
