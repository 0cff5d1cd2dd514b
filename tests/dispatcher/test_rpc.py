"""dispatcher.* over the real JSON-RPC dispatcher, on the module built against a stand-in
router (real registries and scheduler, fake clock, recorded probes and events)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from kamrouter.config import ConfigError
from kamrouter.core.settings import Settings
from kamrouter.modules.dispatcher import DispatcherModule
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.sip import Response
from support.doubles import RpcClient, StandInRouter

LIST = """\
1 sip:127.0.0.1:5070 8 10 duid=gw1;weight=60;foo=bar
1 sip:127.0.0.1:5071;transport=tcp 0 5 socket=udp:127.0.0.1:5060
2 sip:127.0.0.1:5072
"""


class Rpc:
    def __init__(self, tmp_path: Path, text: str = LIST, **config: Any) -> None:
        (tmp_path / "dispatcher.list").write_text(text)
        self.path = tmp_path / "dispatcher.list"
        self.router = StandInRouter(Settings(base_dir=tmp_path))
        cfg = DispatcherConfig(list_file="dispatcher.list", **config)
        self.module = DispatcherModule(self.router, cfg)
        self.call = RpcClient(self.router.rpc)

    async def __call__(self, method: str, *params: Any) -> Any:
        return await self.call(method, *params)


async def test_list_shapes(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path)
    result = await rpc("dispatcher.list")
    assert result["NRSETS"] == 2
    assert [r["SET"]["ID"] for r in result["RECORDS"]] == [1, 2]
    first, second = (t["DEST"] for t in result["RECORDS"][0]["SET"]["TARGETS"])
    assert first == {
        "URI": "sip:127.0.0.1:5070", "FLAGS": "AP", "PRIORITY": 10,
        "ATTRS": {"BODY": "duid=gw1;weight=60;foo=bar", "DUID": "gw1", "MAXLOAD": 0,
                  "WEIGHT": 60, "RWEIGHT": 0, "SOCKET": None, "SOCKNAME": None, "OBPROXY": None},
        "LATENCY": {"AVG": 0, "STD": 0, "EST": 0, "MAX": 0, "TIMEOUT": 0},
        "RUNTIME": {"DLGLOAD": 0, "SELECTED": 0},
        "PROBE": {"LAST": None, "CODE": None, "REASON": None, "SENT": 0, "FAILED": 0},
    }
    assert second["FLAGS"] == "AX" and second["ATTRS"]["SOCKET"] == "udp:127.0.0.1:5060"
    plain = result["RECORDS"][1]["SET"]["TARGETS"][0]["DEST"]
    assert "ATTRS" not in plain
    short = await rpc("dispatcher.list", "short")
    assert "ATTRS" not in short["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
    full = await rpc("dispatcher.list", "full")
    dest = full["RECORDS"][0]["SET"]["TARGETS"][1]["DEST"]
    assert {k: dest[k] for k in ("HOST", "IPADDR", "PORT", "PROTOID")} == \
        {"HOST": "127.0.0.1", "IPADDR": "127.0.0.1", "PORT": 5071, "PROTOID": 2}
    assert full["RECORDS"][1]["SET"]["TARGETS"][0]["DEST"]["ATTRS"]["BODY"] is None
    assert await rpc("dispatcher.list", "long") == \
        ("error", 500, "Invalid Parameters: mode must be short or full")


async def test_no_sets(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path, "# empty\n")
    assert await rpc("dispatcher.list") == ("error", 500, "No Destination Sets")


async def test_set_state(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path)
    assert await rpc("dispatcher.set_state", "ip", 1, "sip:127.0.0.1:5071;transport=tcp") == \
        "Ok. Dispatcher state updated."
    assert await rpc("dispatcher.set_state", "t", 1, "all") == "Ok. Dispatcher state updated."
    result = await rpc("dispatcher.list")
    assert [t["DEST"]["FLAGS"] for t in result["RECORDS"][0]["SET"]["TARGETS"]] == ["TX", "TX"]
    assert await rpc("dispatcher.set_state", "x", 1, "all") == ("error", 500, "Unknown State Value")
    assert await rpc("dispatcher.set_state", "a", 1, "sip:nowhere") == \
        ("error", 500, "State Update Failed")
    assert await rpc("dispatcher.set_state", "a", 7, "all") == ("error", 500, "State Update Failed")
    assert await rpc("dispatcher.set_state", "a", "1", "sip:127.0.0.1:5072") == \
        ("error", 500, "State Update Failed")                  # "1" is set 1, 5072 is in set 2
    assert (await rpc("dispatcher.set_state", "a", "one", "all"))[2].startswith("Invalid Parameters")
    assert await rpc("dispatcher.set_duid_state", "d", 1, "gw1") == "Ok. Dispatcher state updated."
    assert (await rpc("dispatcher.list"))["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]["FLAGS"] == "DX"
    assert [(e, d["uri"], d["origin"]) for e, d in rpc.router.events] == [
        ("dispatcher:dst-down", "sip:127.0.0.1:5071;transport=tcp", "rpc"),
        ("dispatcher:dst-up", "sip:127.0.0.1:5071;transport=tcp", "rpc"),
        ("dispatcher:dst-down", "sip:127.0.0.1:5070", "rpc"),
    ]


async def test_ping_active(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path)
    assert await rpc("dispatcher.ping_active") == {"OldPingState": 1}
    assert await rpc("dispatcher.ping_active", 0) == {"NewPingState": 0, "OldPingState": 1}
    assert await rpc("dispatcher.ping_active") == {"OldPingState": 0}
    assert (await rpc("dispatcher.ping_active", 3))[1] == 500


async def test_add_and_remove(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path)
    assert await rpc("dispatcher.add", 3, "sip:127.0.0.1:5090", 8, 2, "duid=x") == \
        "Ok. Dispatcher destination added."
    assert await rpc("dispatcher.add", 3, "sip:127.0.0.1:5091") == "Ok. Dispatcher destination added."
    targets = (await rpc("dispatcher.list"))["RECORDS"][2]["SET"]["TARGETS"]
    assert [(t["DEST"]["URI"], t["DEST"]["FLAGS"]) for t in targets] == \
        [("sip:127.0.0.1:5090", "AP"), ("sip:127.0.0.1:5091", "AX")]
    assert await rpc("dispatcher.add", 3, "http://x") == \
        ("error", 500, "Adding dispatcher dst failed: invalid SIP URI 'http://x': "
                       "expected a sip: or sips: URI")
    assert (await rpc("dispatcher.add", 3))[2].startswith("Invalid Parameters")
    assert await rpc("dispatcher.remove", 3, "sip:127.0.0.1:5090") == \
        "Ok. Dispatcher destination removed."
    assert await rpc("dispatcher.remove", 3, "sip:127.0.0.1:5090") == \
        ("error", 500, "Removing dispatcher dst failed")


async def test_reload_and_bad_list(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rpc = Rpc(tmp_path)
    rpc.path.write_text(LIST + "3 sip:127.0.0.1:5073\n")
    assert await rpc("dispatcher.reload") == "Ok. Dispatcher successfully reloaded."
    assert (await rpc("dispatcher.list"))["NRSETS"] == 3
    rpc.path.write_text(LIST + "4 sip:127.0.0.1:5074 0 0 weight=x\n")
    assert await rpc("dispatcher.reload") == (
        "error", 500, f"Reload Failed: {rpc.path}:4: attrs: weight='x': expected an integer")
    assert (await rpc("dispatcher.list"))["NRSETS"] == 3
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"dispatcher.reload failed, the current list stays: {rpc.path}:4: attrs: weight='x': "
        "expected an integer"]


async def test_hash(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path)
    assert await rpc("dispatcher.hash", 4, "bob", "server.com") == {"hashid": 3883463682, "slot": 2}
    assert await rpc("dispatcher.hash", 0, "alice") == {"hashid": 1834153949, "slot": 0}
    assert await rpc("dispatcher.hash", 5, 1234) == await rpc("dispatcher.hash", 5, "1234")
    assert (await rpc("dispatcher.hash", "x", "alice"))[2].startswith("Invalid Parameters")


async def test_probes_and_stats_through_the_module(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path, ping_interval=1.0, probing_mode=1)
    router = rpc.router
    rpc.module.prober.start()
    router.scheduler.fire_due(router.clock.now)
    assert [uri for uri, _ in router.probes] == ["sip:127.0.0.1:5070",
                                                 "sip:127.0.0.1:5071;transport=tcp",
                                                 "sip:127.0.0.1:5072"]
    router.clock.now += 0.02
    for uri, on_reply in router.probes:
        on_reply(200, Response(200, "OK")) if uri.endswith("5070") else on_reply(408, None)
    dest = (await rpc("dispatcher.list"))["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
    assert dest["LATENCY"]["AVG"] == pytest.approx(20.0)
    assert dest["PROBE"]["CODE"] == 200 and dest["PROBE"]["SENT"] == 1
    selector = {f"{s.group}:{s.name}": s.value for s in router.stats.select("dispatcher:")}
    assert selector["dispatcher:probes_sent"] == 3 and selector["dispatcher:probes_failed"] == 2
    assert selector["dispatcher:set1_probes_failed"] == 1
    assert selector["dispatcher:active_targets"] == 1
    assert selector["dispatcher:inactive_targets"] == 2
    await rpc.module.stop()


def test_bad_list_at_startup_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Rpc(tmp_path, "1 sip:ok\nbroken line here\n")
    assert err.value.problems == [
        f"dispatcher: {tmp_path / 'dispatcher.list'}:2: setid 'broken' is not an integer"]


async def test_module_start_resolves_names_arms_timers_and_stop_cancels(tmp_path: Path) -> None:
    rpc = Rpc(tmp_path, LIST + "3 sip:localhost:5080\n", ping_interval=1.0, probing_mode=1)
    router = rpc.router
    async with trio.open_nursery() as nursery:
        await rpc.module.start(nursery)
    assert "127.0.0.1" in rpc.module.dispatcher.resolved["localhost"]
    full = await rpc("dispatcher.list", "full")
    assert full["RECORDS"][2]["SET"]["TARGETS"][0]["DEST"]["IPADDR"] is not None
    router.scheduler.fire_due(router.clock.now)
    assert len(router.probes) == 4                       # the first round runs at once
    await rpc.module.stop()
    router.clock.now += 3600
    router.scheduler.fire_due(router.clock.now)
    assert len(router.probes) == 4 and router.scheduler.next_deadline() is None
