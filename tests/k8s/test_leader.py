"""The Lease elector through the official client against the API double: one leader, a prompt
hand-back, expiry judged on the candidate's own clock, lost races, a lost leader stepping down
before anyone may take over, and MicroTimes the API server can decode."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from mlcanary.k8s import naming
from mlcanary.k8s.leader import (
    LEASE_GROUP,
    LEASE_PLURAL,
    LEASE_VERSION,
    LeaderElector,
    LeaseSettings,
    LeaseSettingsError,
    format_micro_time,
)
from tests.k8s.cluster import NAMESPACE, Cluster
from tests.k8s.scenarios import FAST_LEASE, wait_for

MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
# A lease no test waits out, so that a machine busy with other work cannot make its leader
# miss a renewal; the tests of expiry use the scenarios' short one.
STEADY = {"lease_duration": 10.0, "renew_deadline": 8.0, "retry_period": 0.25}
LEASE_S = STEADY["lease_duration"]
RETRY_S = STEADY["retry_period"]


class Candidate:
    """An elector in its thread, and what its callbacks reported, with when (monotonic)."""

    def __init__(
        self, cluster: Cluster, identity: str, durations: dict[str, float], **options: Any
    ) -> None:
        self.identity = identity
        self.events: list[tuple[str, float]] = []
        self.seen: list[str | None] = []
        settings = LeaseSettings(naming.CONTROLLER, NAMESPACE, identity, **durations)
        self.elector = LeaderElector(
            settings,
            cluster.double.configuration(),
            user_agent=f"candidate {identity}",
            on_started_leading=lambda: self.events.append(("started", time.monotonic())),
            on_stopped_leading=lambda: self.events.append(("stopped", time.monotonic())),
            on_candidate=self.seen.append,
            **options,
        )

    def when(self, event: str) -> float:
        return next(at for kind, at in self.events if kind == event)


@contextmanager
def candidates(
    cluster: Cluster, *identities: str, durations: dict[str, float] = STEADY, **options: Any
) -> Iterator[list[Candidate]]:
    """Electors running while the block runs; each stops (handing back) at its end."""
    running = [Candidate(cluster, identity, durations, **options) for identity in identities]
    with ExitStack() as stack:
        for candidate in running:
            stack.enter_context(candidate.elector).start()
        yield running


def _exists(cluster: Cluster) -> bool:
    try:
        cluster.lease()
    except ApiException as exc:
        if exc.status != 404:
            raise
        return False
    return True


def _spec(cluster: Cluster) -> dict[str, Any]:
    spec: dict[str, Any] = cluster.lease()["spec"]
    return spec


def test_of_two_candidates_one_leads_and_the_lease_names_it(cluster: Cluster) -> None:
    with candidates(cluster, "a", "b") as (a, b):
        wait_for(lambda: a.elector.leading or b.elector.leading)
        leader, standby = (a, b) if a.elector.leading else (b, a)
        wait_for(lambda: standby.identity not in standby.seen and leader.identity in standby.seen)
        observed_until = time.monotonic() + 4 * RETRY_S
        while time.monotonic() < observed_until:  # several rounds of renewals and attempts
            assert not (a.elector.leading and b.elector.leading)
            time.sleep(RETRY_S / 5)
        assert leader.elector.leading
        spec = _spec(cluster)
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseDurationSeconds"] == LEASE_S
        assert spec["leaseTransitions"] == 0
        assert MICRO_TIME.fullmatch(spec["acquireTime"])
        assert MICRO_TIME.fullmatch(spec["renewTime"])
        assert spec["renewTime"] > spec["acquireTime"]  # renewed since
        assert standby.events == []


def test_a_stopped_leader_hands_back_and_the_standby_takes_over_at_its_next_attempt(
    cluster: Cluster,
) -> None:
    with candidates(cluster, "a") as (a,):
        wait_for(lambda: a.elector.leading)
        with candidates(cluster, "b") as (b,):
            wait_for(lambda: "a" in b.seen)
            assert a.elector.stop()
            stopped = time.monotonic()
            wait_for(lambda: b.elector.leading)
            assert b.when("started") - stopped < LEASE_S  # not after the lease: it was free
            assert [kind for kind, _ in a.events] == ["started", "stopped"]
            spec = _spec(cluster)
            assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert cluster.lease_holders() == ["a", "", "b", ""]
    assert _spec(cluster)["leaseDurationSeconds"] == 1  # as handed back


def test_a_lease_nobody_renews_is_taken_once_it_has_expired_on_the_candidates_clock(
    cluster: Cluster,
) -> None:
    stamp = format_micro_time(datetime(2020, 1, 1, tzinfo=UTC))  # a clock far behind
    cluster.custom.create_namespaced_custom_object(
        LEASE_GROUP, LEASE_VERSION, NAMESPACE, LEASE_PLURAL,
        {
            "apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}",
            "kind": "Lease",
            "metadata": {"name": naming.CONTROLLER},
            "spec": {
                "holderIdentity": "gone", "leaseDurationSeconds": 1, "leaseTransitions": 4,
                "acquireTime": stamp, "renewTime": stamp,
            },
        },
    )  # fmt: skip
    started = time.monotonic()
    with candidates(cluster, "b") as (b,):
        wait_for(lambda: b.elector.leading)
        waited = b.when("started") - started
        spec = _spec(cluster)
    assert b.seen[0] == "gone"
    assert waited >= 1.0  # the record's own duration, counted from when "b" first saw it
    assert waited <= 1.0 + 2.4 * RETRY_S + 3.0  # then at its next attempt (loaded machine)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 5)
    assert spec["acquireTime"] > stamp


def test_a_write_by_someone_else_costs_the_leader_nothing(cluster: Cluster) -> None:
    with candidates(cluster, "a") as (a,):
        wait_for(lambda: a.elector.leading)
        lease = cluster.lease()
        lease["metadata"]["labels"] = {"team": "ml"}
        written = cluster.custom.replace_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, NAMESPACE, LEASE_PLURAL, naming.CONTROLLER, lease
        )  # its renewal, naming the version before this write, meets a conflict
        assert isinstance(written, dict)
        wait_for(lambda: _spec(cluster)["renewTime"] > written["spec"]["renewTime"])
        assert a.elector.leading
        assert [kind for kind, _ in a.events] == ["started"]
        assert cluster.lease()["metadata"]["labels"] == {"team": "ml"}  # kept


def test_a_deleted_lease_is_created_again_by_its_leader(cluster: Cluster) -> None:
    with candidates(cluster, "a") as (a,):
        wait_for(lambda: a.elector.leading)
        cluster.custom.delete_namespaced_custom_object(
            LEASE_GROUP, LEASE_VERSION, NAMESPACE, LEASE_PLURAL, naming.CONTROLLER
        )
        wait_for(lambda: _exists(cluster))
        assert _spec(cluster)["holderIdentity"] == "a"
        assert [kind for kind, _ in a.events] == ["started"]


def test_a_leader_cut_off_stops_leading_before_the_standby_starts(cluster: Cluster) -> None:
    with candidates(cluster, "a", durations=FAST_LEASE) as (a,):
        wait_for(lambda: a.elector.leading)
        with candidates(cluster, "b", durations=FAST_LEASE) as (b,):
            wait_for(lambda: "a" in b.seen)
            cut = cluster.double.fail_next(503, user_agent="candidate a", times=1_000_000)
            wait_for(lambda: b.elector.leading)
            assert not a.elector.leading
            assert a.when("stopped") < b.when("started")  # never two leaders
            cut.times = 0  # reachable again: "a" stands by, "b" keeps the lease
            wait_for(lambda: a.seen[-1:] == ["b"])
            assert b.elector.leading
            assert not a.elector.leading


def test_times_at_a_whole_second_keep_their_six_fraction_digits(cluster: Cluster) -> None:
    whole = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert format_micro_time(whole) == "2026-01-01T12:00:00.000000Z"
    with candidates(cluster, "a", clock=lambda: whole) as (a,):
        wait_for(lambda: a.elector.leading)
        assert _spec(cluster)["renewTime"] == "2026-01-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_micro_time(datetime(2026, 1, 1))  # naive: the mistake it refuses


def test_one_attempt_for_a_single_pass_then_a_hand_back(cluster: Cluster) -> None:
    settings = LeaseSettings(naming.CONTROLLER, NAMESPACE, "once", **STEADY)
    other = LeaseSettings(naming.CONTROLLER, NAMESPACE, "other", **STEADY)
    configuration = cluster.double.configuration()
    with LeaderElector(settings, configuration, user_agent="once") as once:
        assert once.try_acquire()
        assert once.leading
        with LeaderElector(other, configuration, user_agent="other") as refused:
            assert not refused.try_acquire()
            assert refused.holder == "once"
    assert cluster.lease_holders() == ["once", ""]


@pytest.mark.parametrize(
    ("durations", "setting"),
    [
        ({"retry_period": 0.0}, "retry_period"),
        ({"retry_period": 2.0, "renew_deadline": 2.4}, "renew_deadline"),
        ({"lease_duration": 10.0, "renew_deadline": 10.0}, "lease_duration"),
    ],
)
def test_settings_that_could_elect_two_leaders_are_refused(
    durations: dict[str, float], setting: str
) -> None:
    with pytest.raises(LeaseSettingsError) as refused:
        LeaseSettings(naming.CONTROLLER, NAMESPACE, "a", **durations)
    assert refused.value.setting == setting
    with pytest.raises(LeaseSettingsError, match="identity: must not be empty"):
        LeaseSettings(naming.CONTROLLER, NAMESPACE, "")
