"""A follower worker taking over worker 0's destination states
(kamrouter/modules/dispatcher/workers.py), on two real dispatchers in one process, then two
modules on stand-in routers (worker 0 and worker 1)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from kamrouter.core.settings import Settings
from kamrouter.modules.dispatcher import DispatcherModule
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.flags import INACTIVE, PROBING, state_letters
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.listfile import make_spec
from kamrouter.modules.dispatcher.workers import FOLLOW_INTERVAL, StateFollower, state_records
from kamrouter.stats import StatsRegistry
from support.doubles import RpcClient, StandInRouter

#: Two entries with one URI in set 1 (told apart by their order) and one in set 2.
LIST = """\
1 sip:127.0.0.1:5070 8 0
1 sip:127.0.0.1:5070 8 0
2 sip:127.0.0.1:5071 8 0
"""


def dispatcher(tmp_path: Path, name: str, events: list[Any]) -> Dispatcher:
    path = tmp_path / f"{name}.list"
    path.write_text(LIST)
    found = Dispatcher(DispatcherConfig(), StatsRegistry(), lambda: 0.0,
                       lambda event, data: events.append(event), path)
    found.reload()
    return found


def letters(ds: Dispatcher) -> list[str]:
    return [state_letters(d.health.flags) for d in ds.list.destinations()]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Dispatcher, Dispatcher, StateFollower, list[Any]]:
    events: list[Any] = []
    first = dispatcher(tmp_path, "first", [])
    other = dispatcher(tmp_path, "other", events)
    return first, other, StateFollower(other), events


def test_changes_of_worker_0_are_taken_over_without_events(pair: Any) -> None:
    first, other, follower, events = pair
    assert follower.follow(state_records(first)) == 0
    second = list(first.list.destinations())[1]
    first.change_state(second, INACTIVE | PROBING, Origin.PING)
    assert follower.follow(state_records(first)) == 1
    assert letters(other) == ["AP", "IP", "AP"]   # the twin URI before it is left alone
    assert events == []                            # worker 0 raised dst-down, once


def test_worker_0_is_the_authority(pair: Any) -> None:
    first, other, follower, _ = pair
    other.change_state(list(other.list.destinations())[2], INACTIVE, Origin.SCRIPT)
    assert follower.follow(state_records(first)) == 1
    assert letters(other) == ["AP", "AP", "AP"]


def test_a_change_undone_between_two_looks_is_not_missed(pair: Any) -> None:
    first, other, follower, _ = pair
    dest = list(first.list.destinations())[2]
    first.change_state(dest, INACTIVE | PROBING, Origin.PING)
    follower.follow(state_records(first))
    # An operator's set_state (run in both), then worker 0's next probe fails again.
    for ds in (first, other):
        ds.change_state(list(ds.list.destinations())[2], PROBING, Origin.RPC)
    first.change_state(dest, INACTIVE | PROBING, Origin.PING)
    follower.follow(state_records(first))
    assert letters(other) == ["AP", "AP", "IP"]


def test_a_destination_it_does_not_have_yet_is_taken_over_once_it_has_it(
        pair: Any) -> None:
    first, other, follower, _ = pair
    records = state_records(first)
    extra = [1, "sip:127.0.0.1:5099", INACTIVE]
    follower.follow([*records, extra])
    other.add(make_spec(1, "sip:127.0.0.1:5099", PROBING, origin="rpc"))
    follower.follow([*records, extra])
    (added,) = [d for d in other.list.destinations() if d.uri == "sip:127.0.0.1:5099"]
    assert state_letters(added.health.flags) == "IX"  # worker 0's state


@pytest.mark.parametrize("answer", [None, {"x": 1}, [[1, "sip:a"]], [["1", "sip:a", 0]]])
def test_a_malformed_answer_changes_nothing(pair: Any, answer: Any) -> None:
    _, other, follower, _ = pair
    with pytest.raises(ValueError):
        follower.follow(answer)
    assert letters(other) == ["AP", "AP", "AP"]


async def test_worker_1_does_not_probe_and_follows_worker_0(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    (tmp_path / "dispatcher.list").write_text(LIST)
    config = DispatcherConfig(list_file="dispatcher.list", probing_mode=1)
    routers = [StandInRouter(Settings(base_dir=tmp_path), worker_index=i) for i in (0, 1)]
    modules = [DispatcherModule(router, config) for router in routers]
    routers[1].workers[0] = routers[0].rpc
    async with trio.open_nursery() as nursery:
        for module in modules:
            await module.start(nursery)
        routers[0].advance(0)
        routers[1].advance(config.ping_interval * 3)
        assert len(routers[0].probes) == 3 and routers[1].probes == []
        await RpcClient(routers[0].rpc)("dispatcher.set_state", "ip", 2, "sip:127.0.0.1:5071")
        await trio.sleep(FOLLOW_INTERVAL * 1.5)
        assert letters(modules[1].dispatcher) == ["AP", "AP", "IP"]
        assert routers[1].events == []  # worker 0 raised dst-down
        nursery.cancel_scope.cancel()
