"""pike's counting, bans and memory bound, driven by a fake clock."""
from __future__ import annotations

from kamrouter.modules.pike.table import BLOCKED, NEW_FLOOD, OK, PikeTable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides) -> PikeTable:
    settings = {"sampling_time_unit": 2, "density": 3, "remove_latency": 120,
                "ban_time": 300, "max_sources": 100, **overrides}
    return PikeTable(settings["sampling_time_unit"], settings["density"],
                     settings["remove_latency"], settings["ban_time"], settings["max_sources"],
                     clock)


def test_more_than_the_density_in_one_unit_bans_the_source_for_ban_time():
    clock = Clock()
    table = make(clock)
    assert [table.check("192.0.2.1") for _ in range(5)] == [OK, OK, OK, NEW_FLOOD, BLOCKED]
    assert table.check("192.0.2.2") == OK  # other sources are not affected
    clock.now += 299
    assert table.check("192.0.2.1") == BLOCKED
    clock.now += 2
    assert table.check("192.0.2.1") == OK  # ban over, and a new unit
    assert (table.blocked, table.detected) == (3, 1)


def test_the_window_is_per_sampling_unit():
    clock = Clock()
    table = make(clock)
    for _ in range(10):  # 3 per unit never floods
        assert [table.check("192.0.2.1") for _ in range(3)] == [OK, OK, OK]
        clock.now += 2


def test_without_ban_time_a_source_is_blocked_only_while_it_exceeds():
    clock = Clock()
    table = make(clock, ban_time=0)
    assert [table.check("192.0.2.1") for _ in range(6)] == [OK, OK, OK, NEW_FLOOD, BLOCKED,
                                                             BLOCKED]
    clock.now += 2
    assert table.check("192.0.2.1") == OK
    assert not table.bans


def test_unban_lifts_the_ban_and_forgets_the_counts():
    clock = Clock()
    table = make(clock)
    for _ in range(5):
        table.check("192.0.2.1")
    assert table.banned("192.0.2.1")
    assert table.unban("192.0.2.1")
    assert not table.unban("192.0.2.1")
    assert table.check("192.0.2.1") == OK


def test_manual_bans_expire():
    clock = Clock()
    table = make(clock)
    table.ban("192.0.2.9", 10, "fraud")
    assert table.check("192.0.2.9") == BLOCKED
    [row] = table.rows("HOT")
    assert (row["ip_addr"], row["ban_expires"], row["reason"]) == ("192.0.2.9", 10, "fraud")
    clock.now += 10
    assert table.rows("HOT") == []
    assert table.check("192.0.2.9") == OK


def test_rows_as_kamailio_pike_top():
    clock = Clock()
    table = make(clock, density=10)
    for _ in range(6):
        table.check("192.0.2.1")
    table.check("192.0.2.2")
    assert [r["ip_addr"] for r in table.rows("ALL")] == ["192.0.2.1", "192.0.2.2"]
    [warm] = table.rows("WARM")
    assert warm == {"ip_addr": "192.0.2.1", "leaf_hits_prev": 0, "leaf_hits_curr": 6,
                    "expires": 120, "status": "WARM", "ban_expires": 0, "reason": ""}
    clock.now += 2
    assert table.rows("ALL")[0]["leaf_hits_prev"] == 6


def test_memory_is_bounded_and_flooders_stay_tracked():
    clock = Clock()
    table = make(clock, max_sources=16, density=1000)
    for i in range(10_000):
        table.check(f"10.0.{i // 256}.{i % 256}")
        table.check("192.0.2.1")  # a source that keeps sending stays at the recent end
    assert len(table.sources) == 16
    assert "192.0.2.1" in table.sources
    assert table.evicted == 10_000 + 1 - 16


def test_idle_sources_are_forgotten_after_remove_latency():
    clock = Clock()
    table = make(clock)
    table.check("192.0.2.1")
    clock.now += 121
    table.check("192.0.2.2")
    assert list(table.sources) == ["192.0.2.2"]
