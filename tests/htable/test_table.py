"""The sans-IO table: values, expiry rules and match operators, driven by a fake clock."""
from __future__ import annotations

import subprocess
import sys

import pytest

from kamrouter.modules.htable.config import TableConfig
from kamcommon.htable_match import MatchError, compile_match
from kamrouter.modules.htable.table import Table

from support.doubles import FakeClock


def make(**config: object) -> tuple[Table, FakeClock]:
    clock = FakeClock()
    return Table(TableConfig(name="t", **config), clock), clock  # type: ignore[arg-type]


def test_get_set_types_and_counters() -> None:
    table, _ = make()
    table.set("a", 1)
    table.set("15", "fifteen")
    assert table.get("a") == 1 and table.get("15") == "fifteen"
    assert table.get("missing") is None
    assert (table.stats.hits.value, table.stats.misses.value) == (2, 1)


def test_initval_is_returned_for_missing_keys() -> None:
    table, _ = make(initval=0)
    assert table.get("nobody") == 0
    assert table.lookup("nobody") is None


@pytest.mark.parametrize("value", [True, 1.5, None, b"x", 1 << 63])
def test_bad_values_are_refused_with_the_reason(value: object) -> None:
    table, _ = make()
    with pytest.raises((TypeError, ValueError), match="value"):
        table.set("k", value)  # type: ignore[arg-type]


def test_autoexpire_hides_the_item_at_its_deadline_before_any_sweep() -> None:
    table, clock = make(autoexpire=10)
    table.set("k", "v")
    clock.now += 9.999
    assert table.get("k") == "v" and table.expire_left("k") == 1
    clock.now += 0.001
    assert table.get("k") is None
    assert table.count("**") == 0 and len(table) == 0
    assert table.items() == [] and table.rows() == []
    assert table.expire_due(clock.now) == [("k", "v")]
    assert table.stats.expired.value == 1


def test_updateexpire_true_restarts_the_deadline_on_update() -> None:
    table, clock = make(autoexpire=10, updateexpire=True)
    table.set("k", 1)
    clock.now += 8
    table.set("k", 2)
    clock.now += 8
    assert table.get("k") == 2
    assert table.expire_due(clock.now) == []


def test_updateexpire_false_keeps_the_first_deadline() -> None:
    table, clock = make(autoexpire=10, updateexpire=False)
    table.set("k", 1)
    clock.now += 8
    table.set("k", 2)
    assert table.inc("k") == 3
    clock.now += 2
    assert table.get("k") is None


def test_an_expired_item_is_new_again_when_written() -> None:  # Kamailio #4079, #4745
    table, clock = make(autoexpire=10, updateexpire=False, initval=0)
    table.set("n", 5)
    clock.now += 10
    assert table.inc("n") == 1  # from initval, not 6
    assert table.expire_left("n") == 10  # a fresh deadline, not the passed one
    table.set("s", "old")
    clock.now += 10
    table.set("s", "new")
    assert table.get("s") == "new" and table.expire_left("s") == 10
    # the replaced expired items are still reported to the sweep, before the due ones
    assert table.next_deadline() == clock.now
    assert table.expire_due(clock.now) == [("n", 5), ("s", "old"), ("n", 1)]


def test_inc_dec_rules() -> None:
    table, _ = make()
    assert table.inc("missing") is None and table.lookup("missing") is None
    table.set("s", "text")
    assert table.inc("s") is None and table.get("s") == "text"
    table.set("n", 10)
    assert table.inc("n", -3) == 7 and table.get("n") == 7
    with_init, _ = make(initval=100)
    assert with_init.inc("x") == 101 and with_init.inc("x", -2) == 99


def test_inc_refuses_to_overflow_64_bits() -> None:
    table, _ = make()
    table.set("n", (1 << 63) - 1)
    with pytest.raises(ValueError, match="64-bit"):
        table.inc("n")
    assert table.get("n") == (1 << 63) - 1


def test_per_item_expiry_on_a_table_without_autoexpire() -> None:
    table, clock = make()
    table.set("k", "v", expire=5)
    table.set("k", "v2")  # a plain update keeps the item's own deadline
    assert table.expire_left("k") == 5
    assert table.set_expire("k", 0) and table.expire_left("k") == 0
    clock.now += 100
    assert table.get("k") == "v2"
    assert not table.set_expire("missing", 3)
    with pytest.raises(ValueError, match="expire"):
        table.set("k", 1, expire=-1)


def test_explicit_expiry_wins_over_autoexpire() -> None:
    table, clock = make(autoexpire=100)
    table.set("k", 1, expire=2)
    clock.now += 2
    assert table.get("k") is None
    table.set("never", 1, expire=0)
    clock.now += 1000
    assert table.get("never") == 1


def test_deadline_notifications_only_for_earlier_deadlines() -> None:
    table, clock = make(autoexpire=10)
    seen: list[float] = []
    table.on_deadline = seen.append
    table.set("a", 1)
    clock.now += 1
    table.set("b", 1)           # later than a's: no need to re-arm
    table.set("c", 1, expire=1)  # earlier: re-arm
    assert seen == [1010.0, 1002.0]


def test_many_updates_keep_the_deadline_heap_small_and_right() -> None:
    table, clock = make(autoexpire=60)
    for i in range(5000):
        clock.now += 0.001
        table.set("hot", i)
    assert len(table._heap) <= 2 * len(table._items) + 1024
    clock.now += 59.9
    assert table.get("hot") == 4999
    clock.now += 0.2
    assert table.expire_due(clock.now) == [("hot", 4999)]


def test_counting_and_deleting_by_name_and_value() -> None:
    table, clock = make()
    table.set("10.0.0.1", "banned")
    table.set("10.0.0.2", "BANNED-too")
    table.set("192.168.1.1", 3)
    table.set("192.168.1.2", 3, expire=1)
    clock.now += 1  # the last one is expired: never counted
    assert table.count("%~10.0.") == 2
    assert table.count("~%.1") == 2
    assert table.count("==10.0.0.1") == 1
    assert table.count("~~^192") == 1
    assert table.count("^10\\.0\\.0\\.[12]$") == 2  # no prefix: regex
    assert table.count("**") == 3
    assert table.count("~~banned", values=True) == 2  # case-insensitive
    assert table.count("eq3", values=True) == 1
    assert table.count("==3", values=True) == 0  # text operators skip integer values
    assert table.delete_matching("%~10.") == 2
    assert sorted(k for k, _ in table.items()) == ["192.168.1.1"]


def test_match_expression_errors_name_the_expression() -> None:
    with pytest.raises(MatchError, match="eq5.*key names"):
        compile_match("eq5")
    with pytest.raises(MatchError, match="eqx.*integer"):
        compile_match("eqx", values=True)
    with pytest.raises(MatchError, match="bad regular expression"):
        compile_match("~~(")


def test_writes_are_reported_in_order() -> None:
    table, _ = make(initval=0)
    ops: list[tuple] = []
    table.on_write = ops.append
    table.set("a", "x", expire=3)
    table.inc("n")
    table.set_expire("a", 9)
    table.delete("a")
    table.delete("a")  # nothing to delete: nothing reported
    table.flush()
    assert ops == [("set", "a", "x", 3), ("inc", "n", 1), ("expire", "a", 9),
                   ("delete", "a"), ("flush",)]


def test_state_from_elsewhere_is_not_reported_and_keeps_pending_keys() -> None:
    table, clock = make()
    ops: list[tuple] = []
    table.on_write = ops.append
    table.apply("remote", 1, ttl=5)
    table.apply_delete("nothing")
    table.set("mine", "local")
    ops.clear()
    table.replace_all([("x", "from redis", None), ("mine", "stale", None),
                       ("gone", 1, 0.5)], keep=["mine"])
    assert ops == []
    assert table.get("mine") == "local" and table.get("x") == "from redis"
    assert table.lookup("remote") is None
    clock.now += 0.5
    assert table.get("gone") is None


def test_a_pathological_regex_runs_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in a backtracking engine: 2^50000 steps on this key.
    # In a subprocess with a deadline, so a regression fails instead of stalling the suite.
    code = ("from kamcommon.htable_match import compile_match\n"
            "print(compile_match('~~(a+)+$')('a' * 50000 + 'b'), "
            "compile_match('(x+x+)+y', values=True)('x' * 50000))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_regexes_are_bounded_in_length_and_have_no_backreferences() -> None:
    with pytest.raises(MatchError, match="at most 1024"):
        compile_match("~~" + "a" * 1025)
    with pytest.raises(MatchError, match=r"bad regular expression \(invalid escape"):
        compile_match(r"~~(a)\1")
    assert compile_match("~~^10\\.0\\.")("10.0.0.1") and compile_match("B[o]B")("xbobx")
