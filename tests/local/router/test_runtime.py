"""The runtime commands that bring HAProxy's live servers to a table, worked out without HAProxy.

`Simulated` applies the commands one at a time the way HAProxy does, so the tests can check
what every request balanced between two commands would have met.
"""

from __future__ import annotations

import pytest

from mlcanary.local.router.runtime import LiveServer, commands_for, parse_servers_state
from mlcanary.rollout.routers import Route, RouteTable

V1 = "http://127.0.0.1:3001"
V2 = "http://127.0.0.1:3002"

# What HAProxy 2.6 answers to `show servers state predict`.
ANSWER = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl \
srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 predict 1 v1 127.0.0.1 2 0 90 100 12 6 3 1 6 0 0 0 - 3001 - 0 0 - - 0
3 predict 2 v2 127.0.0.1 2 1 10 10 0 1 0 0 0 0 0 0 - 3002 - 0 0 - - 0

"""


def _live(**weights: int) -> dict[str, LiveServer]:
    ports = {"v1": 3001, "v2": 3002, "v3": 3003}
    return {n: LiveServer(n, "127.0.0.1", ports[n], w, 0) for n, w in weights.items()}


def _table(**weights: int) -> RouteTable:
    urls = {"v1": V1, "v2": V2, "v3": "http://127.0.0.1:3003"}
    return RouteTable(tuple(Route(v, urls[v], w) for v, w in weights.items()))


class Simulated:
    """Weights of the servers taking requests, after each command."""

    def __init__(self, live: dict[str, LiveServer]) -> None:
        self.weight = {n: s.weight for n, s in live.items()}
        self.taking = {n: s.ready for n, s in live.items()}

    def apply(self, command: str) -> None:
        words = command.split()
        name = words[2].split("/")[1]
        match words[:2], words[3:]:
            case ["add", "server"], [_, "weight", weight, *_]:
                self.weight[name], self.taking[name] = int(weight), False
            case ["enable", "server"], _:
                self.taking[name] = True
            case ["set", "server"], ["weight", weight]:
                self.weight[name] = int(weight)
            case ["set", "server"], ["state", "maint"]:
                self.taking[name] = False
            case ["set", "server"], ["state", "ready"]:
                self.taking[name] = True
            case ["del", "server"], _:
                del self.weight[name], self.taking[name]

    def total(self) -> int:
        return sum(w for n, w in self.weight.items() if self.taking[n])


def test_the_servers_state_answer_is_read_by_column_name() -> None:
    servers = parse_servers_state(ANSWER)
    assert servers["v1"] == LiveServer("v1", "127.0.0.1", 3001, 90, 0)
    assert servers["v1"].ready
    assert not servers["v2"].ready  # forced maintenance
    assert servers["v2"].in_maintenance


def test_an_answer_that_is_not_a_servers_state_is_refused() -> None:
    with pytest.raises(ValueError, match="not a servers state answer"):
        parse_servers_state("Unknown command.\n")


def test_a_table_already_in_force_needs_no_command() -> None:
    assert commands_for("predict", _live(v1=90, v2=10), _table(v1=90, v2=10)) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"v1": 100, "v2": 0}, {"v1": 0, "v2": 100}),
        ({"v1": 0, "v2": 100}, {"v1": 100, "v2": 0}),
        ({"v1": 90, "v2": 10}, {"v1": 10, "v2": 90}),
        ({"v1": 100}, {"v1": 0, "v2": 100}),
        ({"v1": 100, "v2": 0}, {"v2": 100}),
        ({"v1": 100, "v2": 0}, {"v3": 100}),
    ],
)
def test_no_request_ever_meets_every_weight_at_zero(
    before: dict[str, int], after: dict[str, int]
) -> None:
    live = _live(**before)
    simulated = Simulated(live)
    for command in commands_for("predict", live, _table(**after)):
        simulated.apply(command)
        assert simulated.total() > 0, command
    assert {n: w for n, w in simulated.weight.items() if simulated.taking[n]} == after


def test_a_new_server_is_added_checked_and_enabled_and_a_leaving_one_deleted() -> None:
    commands = commands_for("feedback", _live(v1=100), _table(v2=100))
    assert commands == [
        "add server feedback/v2 127.0.0.1:3002 weight 100 pool-max-conn -1 "
        "pool-purge-delay 5s check inter 1s fall 1 rise 1 observe layer4 error-limit 1 "
        "on-error mark-down",
        "enable health feedback/v2",
        "enable server feedback/v2",
        "set server feedback/v1 state maint",
        "del server feedback/v1",
    ]


def test_a_moved_version_gets_its_new_address_and_is_declared_up() -> None:
    live = _live(v1=50, v2=50)
    table = RouteTable((Route("v1", V1, 50), Route("v2", "http://127.0.0.1:4002", 50)))
    commands = commands_for("predict", live, table)
    assert commands[:2] == [
        "set server predict/v2 addr 127.0.0.1 port 4002",
        "set server predict/v2 health up",
    ]


def test_after_a_change_each_weighted_server_is_placed_again_one_at_a_time() -> None:
    commands = commands_for("predict", _live(v1=100, v2=0), _table(v1=90, v2=10))
    assert commands[-4:] == [
        "set server predict/v1 weight 0",
        "set server predict/v1 weight 90",
        "set server predict/v2 weight 0",
        "set server predict/v2 weight 10",
    ]


def test_a_server_alone_in_the_table_is_never_taken_out() -> None:
    commands = commands_for("predict", _live(v1=90, v2=10), _table(v1=0, v2=100))
    assert "set server predict/v2 weight 0" not in commands


def test_a_server_left_in_maintenance_is_deleted_again_or_brought_back() -> None:
    live = {
        "v1": LiveServer("v1", "127.0.0.1", 3001, 100, 0),
        "v2": LiveServer("v2", "127.0.0.1", 3002, 0, 1),
    }
    assert commands_for("predict", live, _table(v1=100)) == ["del server predict/v2"]
    back = commands_for("predict", live, _table(v1=100, v2=0))
    assert back[:2] == ["set server predict/v2 state ready", "set server predict/v2 health up"]
