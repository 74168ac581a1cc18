from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcanary.local.file_store import FileStatusStore
from mlcanary.rollout.commands import Command
from mlcanary.rollout.status import Phase, RolloutStatus, Weights
from mlcanary.rollout.store.base import ConflictError


def test_save_load_round_trip_with_revisions(tmp_path: Path) -> None:
    store = FileStatusStore(tmp_path)
    assert store.load("r") is None
    first = store.save("r", RolloutStatus(phase=Phase.PROGRESSING), None)
    status = RolloutStatus(phase=Phase.PROGRESSING, weights=Weights(stable=90, canary=10))
    second = store.save("r", status, first.revision)
    loaded = store.load("r")
    assert loaded is not None
    assert (loaded.revision, loaded.status) == (second.revision, status)
    assert store.names() == ["r"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_stale_save_is_a_conflict_and_loses_nothing(tmp_path: Path) -> None:
    store = FileStatusStore(tmp_path)
    first = store.save("r", RolloutStatus(), None)
    store.save("r", RolloutStatus(phase=Phase.PAUSED), first.revision)
    with pytest.raises(ConflictError):
        store.save("r", RolloutStatus(phase=Phase.ROLLED_BACK), first.revision)
    loaded = store.load("r")
    assert loaded is not None
    assert loaded.status.phase is Phase.PAUSED


def test_the_file_is_always_whole_json(tmp_path: Path) -> None:
    store = FileStatusStore(tmp_path)
    revision = None
    for step in range(20):
        revision = store.save("r", RolloutStatus(step_index=step), revision).revision
        document = json.loads((tmp_path / "r.status.json").read_text())
        assert document["status"]["stepIndex"] == step


def test_commands_queue_in_order(tmp_path: Path) -> None:
    store = FileStatusStore(tmp_path)
    store.request("r", Command.PAUSE)
    store.request("r", Command.RESUME)
    first, second = store.take_command("r"), store.take_command("r")
    assert first is not None
    assert second is not None
    assert (first.command, second.command) == (Command.PAUSE, Command.RESUME)
    assert first.key != second.key
    assert store.take_command("r") is None
    assert store.take_command("unknown") is None


def test_the_platform_works_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prometheus reads relative file_sd paths against its config's folder, and the processes
    may run elsewhere: a relative state dir given by a user must be made absolute."""
    from mlcanary.local.platform import LocalPlatform

    monkeypatch.chdir(tmp_path)
    platform = LocalPlatform(Path("reports/demo/state"))
    assert platform.state_dir == tmp_path / "reports" / "demo" / "state"
