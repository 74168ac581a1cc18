"""The status subresource as the status store, and commands as an annotation."""

from __future__ import annotations

import pytest

from mlcanary.k8s import crd
from mlcanary.k8s.status_store import COMMAND_ANNOTATION, ModelRolloutStatusStore
from mlcanary.rollout.commands import Command
from mlcanary.rollout.status import Phase, RolloutStatus
from mlcanary.rollout.store.base import ConflictError
from tests.k8s.cluster import NAME, NAMESPACE, Cluster, rollout_document


@pytest.fixture
def store(cluster: Cluster) -> ModelRolloutStatusStore:
    cluster.install(rollout_document("gateway-api"))
    return ModelRolloutStatusStore(cluster.custom, NAMESPACE)


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
    # The store persists what the core decided and adds nothing of its own but the generation.
    assert cluster.status()["conditions"] == []


def test_a_save_over_a_newer_revision_is_a_conflict(store: ModelRolloutStatusStore) -> None:
    first = store.load(NAME)
    assert first is not None
    store.save(NAME, RolloutStatus(message="a"), first.revision)
    with pytest.raises(ConflictError, match="changed since"):
        store.save(NAME, RolloutStatus(message="b"), first.revision)
    current = store.load(NAME)
    assert current is not None
    assert current.status.message == "a"


def test_an_unknown_rollout_loads_as_none(store: ModelRolloutStatusStore) -> None:
    assert store.load("absent") is None


def test_a_command_is_carried_out_once_recorded_in_the_same_write(
    cluster: Cluster, store: ModelRolloutStatusStore
) -> None:
    store.request(NAME, Command.PAUSE)
    loaded = store.load(NAME)
    assert loaded is not None
    request = store.take_command(NAME)
    assert request is not None
    assert request.command is Command.PAUSE
    annotation = cluster.rollout()["metadata"]["annotations"][COMMAND_ANNOTATION]
    assert request.key == annotation
    # The engine records the request in the decision that carries it out.
    store.save(
        NAME, loaded.status.model_copy(update={"last_command": request.key}), loaded.revision
    )
    again = store.load(NAME)
    assert again is not None
    assert store.take_command(NAME) is None
    assert again.status.last_command == annotation


def test_a_command_taken_by_a_save_that_conflicted_is_taken_again(
    store: ModelRolloutStatusStore,
) -> None:
    store.request(NAME, Command.ABORT)
    stale = store.load(NAME)
    assert stale is not None
    store.save(NAME, RolloutStatus(message="someone else"), stale.revision)
    store.load(NAME)
    taken = store.take_command(NAME)
    assert taken is not None
    assert taken.command is Command.ABORT
    with pytest.raises(ConflictError):
        store.save(NAME, RolloutStatus(last_command=taken.key), stale.revision)
    store.load(NAME)
    again = store.take_command(NAME)
    assert again is not None
    assert again.key == taken.key


def test_a_word_that_is_no_command_is_handed_over_for_the_core_to_ignore(
    cluster: Cluster, store: ModelRolloutStatusStore
) -> None:
    cluster.custom.patch_namespaced_custom_object(
        crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, NAME,
        {"metadata": {"annotations": {COMMAND_ANNOTATION: "rewind"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    store.load(NAME)
    request = store.take_command(NAME)
    assert request is not None
    assert (request.word, request.key, request.command) == ("rewind", "rewind", None)
