from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest

from mlcanary.serving.ledger import FeedbackLedger
from mlcanary.serving.ledger_memory import MemoryLedger
from mlcanary.serving.ledger_sqlite import SqliteLedger


@pytest.fixture(params=["memory", "sqlite"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], FeedbackLedger]:
    if request.param == "memory":
        shared = MemoryLedger()
        return lambda: shared
    return lambda: SqliteLedger(tmp_path / "ledger.sqlite")


def test_claim_once(make_ledger: Callable[[], FeedbackLedger]) -> None:
    ledger = make_ledger()
    assert ledger.claim("a", "v1", 10.0) is True
    assert ledger.claim("a", "v1", 11.0) is False
    assert ledger.claim("b", "v2", 12.0) is True


def test_forget_before_drops_only_old_claims(make_ledger: Callable[[], FeedbackLedger]) -> None:
    ledger = make_ledger()
    ledger.claim("old", "v1", 5.0)
    ledger.claim("new", "v1", 50.0)
    assert ledger.forget_before(10.0) == 1
    assert ledger.claim("old", "v1", 60.0) is True
    assert ledger.claim("new", "v1", 60.0) is False


def test_sqlite_claims_survive_a_restart(tmp_path: Path) -> None:
    first = SqliteLedger(tmp_path / "ledger.sqlite")
    assert first.claim("p1", "v1", 1.0)
    first.close()
    again = SqliteLedger(tmp_path / "ledger.sqlite")
    assert again.claim("p1", "v1", 2.0) is False


def _claim_all(path: str, ids: list[str], results: multiprocessing.Queue[int]) -> None:
    ledger = SqliteLedger(Path(path))
    results.put(sum(ledger.claim(i, "v1", 1.0) for i in ids))
    ledger.close()


def test_sqlite_counts_each_id_once_across_processes(tmp_path: Path) -> None:
    """Several replicas racing to claim the same ids: exactly one wins each."""
    ids = [f"id-{n}" for n in range(300)]
    path = str(tmp_path / "ledger.sqlite")
    SqliteLedger(Path(path)).close()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_claim_all, args=(path, ids, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(won) == len(ids)
