"""The run loop against test doubles: router, metrics, status store and workloads in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlcanary.rollout.commands import Command
from mlcanary.rollout.controller import Controller, TickOutcome
from mlcanary.rollout.metrics.fake import ScriptedProvider
from mlcanary.rollout.observations import ArmCounters
from mlcanary.rollout.routers.base import Route, RouteTable
from mlcanary.rollout.routers.memory import MemoryRouter
from mlcanary.rollout.spec import ModelRollout
from mlcanary.rollout.status import Phase
from mlcanary.rollout.store.base import ConflictError, StoredStatus
from mlcanary.rollout.store.memory import MemoryStatusStore
from mlcanary.rollout.workloads import WorkloadNotReadyError

SPEC = {
    "apiVersion": "mlcanary.dev/v1alpha1",
    "kind": "ModelRollout",
    "metadata": {"name": "digits-v2"},
    "spec": {
        "model": "digits",
        "stable": {"version": "v1"},
        "canary": {"version": "v2"},
        "router": {"type": "local"},
        "metrics": {"provider": "scrape"},
        "steps": [10, 100],
        "analysis": {"interval": "10s", "minSamples": 100, "maxDuration": "2m"},
    },
}


class FakeWorkloads:
    def __init__(self, broken: frozenset[str] = frozenset()) -> None:
        self.served: set[str] = set()
        self.retired: list[str] = []
        self.broken = broken

    def ensure(self, model: str, version: str) -> str:
        if version in self.broken:
            raise WorkloadNotReadyError(f"{model}:{version} never became ready")
        self.served.add(version)
        return f"http://127.0.0.1:1{version[1:]}000"

    def retire(self, model: str, version: str) -> None:
        self.served.discard(version)
        self.retired.append(version)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def arm(tick: int, rate: float, accuracy: float, latency_s: float = 0.004) -> ArmCounters:
    """Cumulative counters after `tick` intervals at `rate` labeled requests per interval."""
    n = float(tick * rate)
    correct = round(n * accuracy)
    fast = latency_s <= 0.005
    return ArmCounters(
        predictions=n,
        feedback_correct=float(correct),
        feedback_incorrect=n - correct,
        requests=n,
        server_errors=0.0,
        client_errors=0.0,
        latency_buckets={0.005: n if fast else 0.0, 0.05: n, float("inf"): n},
    )


def stream(ticks: int, canary_accuracy: float, rate: float = 3000.0):
    return [(arm(t, rate * 9, 0.97), arm(t, rate, canary_accuracy)) for t in range(1, ticks + 1)]


def make(script, store=None, router=None, workloads=None, clock=None) -> Controller:
    clock = clock or Clock()
    return Controller(
        rollout=ModelRollout.model_validate(SPEC),
        router=router or MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),))),
        metrics=ScriptedProvider(script),
        store=store or MemoryStatusStore(),
        workloads=workloads or FakeWorkloads(),
        drain=timedelta(0),
        clock=clock,
        sleep=clock.sleep,
    )


def weights_seen(router: MemoryRouter) -> list[dict[str, int]]:
    return [table.weights for table in router.history]


def test_a_good_canary_is_promoted_through_10_then_100() -> None:
    workloads = FakeWorkloads()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    final = make(stream(60, 0.97), router=router, workloads=workloads).run()
    assert final.phase is Phase.SUCCEEDED
    assert weights_seen(router) == [{"v1": 90, "v2": 10}, {"v1": 0, "v2": 100}, {"v2": 100}]
    assert workloads.retired == ["v1"]


def test_a_worse_canary_is_rolled_back_and_retired() -> None:
    workloads = FakeWorkloads()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    final = make(stream(60, 0.85), router=router, workloads=workloads).run()
    assert final.phase is Phase.ROLLED_BACK
    assert weights_seen(router)[0] == {"v1": 90, "v2": 10}
    assert weights_seen(router)[-1] == {"v1": 100}
    assert max(w.get("v2", 0) for w in weights_seen(router)) == 10
    assert workloads.retired == ["v2"]
    assert "accuracy" in final.message


def test_a_metrics_outage_never_promotes_and_rolls_back_at_the_deadline() -> None:
    script = [stream(1, 0.97)[0], *([None] * 40)]
    final = make(script).run()
    assert final.phase is Phase.ROLLED_BACK
    assert "inconclusive" in final.message
    # The provider's own words, and since when, instead of only "inconclusive".
    assert "metrics unavailable since " in final.message
    assert "scripted outage" in final.message


def test_a_canary_that_never_gets_ready_gets_no_traffic_and_is_rolled_back() -> None:
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    final = make(stream(40, 0.97), router=router, workloads=FakeWorkloads(frozenset({"v2"}))).run()
    assert final.phase is Phase.ROLLED_BACK
    assert "metrics unavailable since " in final.message
    assert "the canary is not served: " in final.message
    assert all(w == {"v1": 100} for w in weights_seen(router))


def test_a_restarted_controller_resumes_at_the_same_step_and_weights() -> None:
    store = MemoryStatusStore()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    clock = Clock()
    script = stream(60, 0.97, rate=300.0)
    first = make(script, store=store, router=router, clock=clock)
    for _ in range(3):
        first.tick()
        clock.sleep(10)
    before = store.load("digits-v2")
    assert before is not None
    assert before.status.phase is Phase.PROGRESSING
    tables_before = len(router.history)
    second = make(script[3:], store=store, router=router, clock=clock)
    report = second.tick()
    assert report.status.step_index >= before.status.step_index
    assert report.status.canary_version == "v2"
    assert report.status.history[: len(before.status.history)] == before.status.history
    if report.status.step_index == before.status.step_index:
        assert len(router.history) == tables_before
    assert second.run().phase is Phase.SUCCEEDED


def test_an_unreachable_router_is_reported_and_nothing_is_decided() -> None:
    store = MemoryStatusStore()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    controller = make(stream(10, 0.97), store=store, router=router)
    controller.tick()
    saved = store.saves
    router.available = False
    report = controller.tick()
    assert report.problem is not None
    assert "router unavailable" in report.problem
    assert store.saves == saved


@pytest.mark.parametrize(
    ("command", "phase", "canary_weight"),
    [
        (Command.PAUSE, Phase.PAUSED, 10),
        (Command.ABORT, Phase.ROLLED_BACK, 0),
        (Command.PROMOTE, Phase.SUCCEEDED, 100),
    ],
)
def test_commands_from_a_person_are_applied_on_the_next_tick(command, phase, canary_weight) -> None:
    store = MemoryStatusStore()
    controller = make(stream(10, 0.97, rate=50.0), store=store)
    controller.tick()
    store.request("digits-v2", command)
    report = controller.tick()
    assert report.status.phase is phase
    assert report.status.weights.canary == canary_weight


def test_timeline_lines_are_written(tmp_path) -> None:
    controller = make(stream(60, 0.85))
    controller.timeline = tmp_path / "timeline.jsonl"
    controller.run()
    lines = controller.timeline.read_text().splitlines()
    assert len(lines) >= 2
    assert '"action":"rollback"' in lines[-1]


def test_the_loser_is_retired_at_the_drain_deadline_without_a_tick_waiting_for_it() -> None:
    clock = Clock()
    workloads = FakeWorkloads()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    controller = make(stream(60, 0.85), router=router, workloads=workloads, clock=clock)
    controller.drain = timedelta(seconds=10)
    slept: list[float] = []
    controller.sleep = slept.append  # a tick that slept would show here
    report = controller.tick()
    while report.status.phase is not Phase.ROLLED_BACK:
        clock.sleep(10)
        report = controller.tick()
    finished_at = clock.now
    assert report.status.retire_at == finished_at + timedelta(seconds=10)
    assert weights_seen(router)[-1] == {"v1": 100, "v2": 0}  # still served, no traffic
    assert workloads.retired == []
    clock.sleep(5)
    early = controller.tick()
    assert (early.outcome, workloads.retired, early.settled) == (TickOutcome.SETTLING, [], False)
    clock.sleep(5)
    retired = controller.tick()
    assert workloads.retired == ["v2"]
    assert weights_seen(router)[-1] == {"v1": 100}
    assert retired.settled
    assert slept == []


class ConflictingStore(MemoryStatusStore):
    """Saves are refused once, as if someone else wrote the status meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_next = False

    def save(self, name: str, status, revision: str | None) -> StoredStatus:
        if self.refuse_next:
            self.refuse_next = False
            raise ConflictError("someone else saved")
        return super().save(name, status, revision)


def test_a_lost_status_write_is_a_conflicted_tick_that_routes_nothing() -> None:
    store = ConflictingStore()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    controller = make(stream(10, 0.97), store=store, router=router)
    controller.tick()
    tables = len(router.history)
    store.refuse_next = True
    report = controller.tick()
    assert report.outcome is TickOutcome.CONFLICTED
    assert report.decision is None
    assert len(router.history) == tables
    assert controller.tick().outcome is TickOutcome.DECIDED


def test_a_bake_keeps_the_old_stable_served_at_weight_0_until_it_ends() -> None:
    spec = {**SPEC, "spec": {**SPEC["spec"], "promotion": {"bake": "1m"}}}  # type: ignore[dict-item]
    clock = Clock()
    workloads = FakeWorkloads()
    router = MemoryRouter(RouteTable((Route("v1", "http://127.0.0.1:11000", 100),)))
    controller = Controller(
        rollout=ModelRollout.model_validate(spec),
        router=router,
        metrics=ScriptedProvider(stream(40, 0.97)),
        store=MemoryStatusStore(),
        workloads=workloads,
        drain=timedelta(0),
        clock=clock,
        sleep=clock.sleep,
    )
    phases = []
    while True:
        report = controller.tick()
        phases.append((report.status.phase, sorted(workloads.served), list(workloads.retired)))
        if report.settled:
            break
        clock.sleep(10)
    baking = [served for phase, served, retired in phases if phase is Phase.BAKING]
    assert baking, "the rollout baked"
    assert all(served == ["v1", "v2"] and not retired for _, served, retired in phases[:-2])
    assert phases[-1] == (Phase.SUCCEEDED, ["v2"], ["v1"])
    assert {"v1": 0, "v2": 100} in weights_seen(router)
