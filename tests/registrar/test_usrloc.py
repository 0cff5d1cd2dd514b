"""The usrloc module on a stand-in router: one sweep timer, events, SQLite write-through."""
from __future__ import annotations

from pathlib import Path

from kamrouter.core.settings import Settings
from kamrouter.modules.usrloc import UsrlocModule
from kamrouter.modules.usrloc.config import UsrlocConfig
from kamrouter.modules.usrloc.location import Binding

from support.doubles import FakeClock as Clock
from support.doubles import StandInRouter


def module(tmp_path: Path, clock: Clock, **config: object) -> tuple[UsrlocModule, StandInRouter]:
    router = StandInRouter(Settings(base_dir=tmp_path), clock=clock)
    return UsrlocModule(router, UsrlocConfig(**config), clock), router  # type: ignore[arg-type]


async def test_one_timer_sweeps_expired_bindings(tmp_path: Path) -> None:
    clock = Clock()
    ul, router = module(tmp_path, clock, timer_interval=10)
    await ul.start(None)  # type: ignore[arg-type]
    table = ul.table("location")
    for i in range(1000):
        table.put(f"user{i}", Binding(f"sip:u{i}@10.0.0.1", clock.now + 5 + i % 20))
    assert len(router.scheduler) == 1  # one timer, not one per binding
    router.advance(10)
    assert table.count_contacts() == 1000 - 300  # expired at 1005..1010 are gone
    assert sum(1 for r in table.records.values() for _ in r) == 700
    assert ul.expired.value == 300
    assert router.events[0][0] == "usrloc:contact-expired"
    router.advance(15)
    assert table.records == {} and len(router.scheduler) == 1


def test_sqlite_write_through_and_reload(tmp_path: Path) -> None:
    clock = Clock()
    ul, _ = module(tmp_path, clock, db_mode="sqlite", db_file="loc.sqlite")
    table = ul.table("location")
    table.put("alice", Binding("sip:a@10.0.0.1", clock.now + 100, q=500, call_id="c",
                               cseq=2, path="<sip:p;lr>", user_agent="ua"))
    doomed = Binding("sip:b@10.0.0.2", clock.now + 100)
    table.put("alice", doomed)
    table.put("bob", Binding("sip:bob@10.0.0.3", clock.now + 1))
    table.delete("alice", doomed)
    # another process opening the file (as after kill -9) sees what was committed
    clock.now += 2
    again, _ = module(tmp_path, clock, db_mode="sqlite", db_file="loc.sqlite")
    loaded = again.table("location")
    assert [(aor, b.contact, b.q, b.path) for aor, bs in loaded.records.items() for b in bs] \
        == [("alice", "sip:a@10.0.0.1", 500, "<sip:p;lr>")]  # bob expired meanwhile
    assert loaded.flush() == 1
    assert module(tmp_path, clock, db_mode="sqlite", db_file="loc.sqlite")[0].table(
        "location").records == {}  # the flush was written through too
