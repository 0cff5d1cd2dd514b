"""The target state machine (health.request_state), rule by rule."""
from __future__ import annotations

import pytest

from kamrouter.modules.dispatcher.flags import (
    DISABLED, INACTIVE, NOPING, PROBING, TRYING, parse_flags, parse_state, state_letters,
)
from kamrouter.modules.dispatcher.health import Health, Origin, Thresholds, request_state

PING, SCRIPT, RPC = Origin.PING, Origin.SCRIPT, Origin.RPC


@pytest.mark.parametrize(("flags", "letters"), [
    (0, "AX"), (PROBING, "AP"), (INACTIVE | PROBING, "IP"), (TRYING | PROBING, "TP"),
    (DISABLED, "DX"), (INACTIVE | DISABLED, "IX"), (NOPING, "AX"),
])
def test_state_letters(flags: int, letters: str) -> None:
    assert state_letters(flags) == letters


def test_parse_state() -> None:
    assert parse_state("a") == 0 and parse_state("AP") == PROBING
    assert parse_state("ip") == INACTIVE | PROBING and parse_state("T") == TRYING
    assert parse_state("d") == DISABLED
    for bad in ("", "x", "p", "apx", "active"):
        with pytest.raises(ValueError):
            parse_state(bad)
    assert parse_flags("0x18") == 24 and parse_flags("9") == 9


def run(health: Health, *steps: tuple[int, Origin], probing: int = 1, inactive: int = 1) -> str:
    for requested, origin in steps:
        request_state(health, requested, origin, Thresholds(probing, inactive))
    return state_letters(health.flags)


def test_failures_count_to_probing_threshold() -> None:
    health = Health(PROBING)
    assert run(health, (TRYING | PROBING, PING), probing=3) == "TP"
    assert run(health, (TRYING | PROBING, PING), probing=3) == "TP"
    assert run(health, (TRYING | PROBING, PING), probing=3) == "IP"
    assert health.failures == 0


def test_a_success_resets_the_failure_count() -> None:
    health = Health(PROBING)
    run(health, (TRYING | PROBING, PING), (TRYING | PROBING, PING), probing=3)
    assert run(health, (PROBING, PING), probing=3) == "AP"
    assert run(health, (TRYING | PROBING, PING), (TRYING | PROBING, PING), probing=3) == "TP"


def test_recovery_needs_inactive_threshold_good_replies_and_keeps_probing() -> None:
    health = Health(INACTIVE | PROBING)
    # Mode 0 asks for "active without probing" on success; below the threshold the target
    # stays inactive but keeps probing, else it would never be pinged again (issue #2100).
    assert run(health, (0, PING), inactive=3) == "IP"
    assert run(health, (0, PING), inactive=3) == "IP"
    assert run(health, (TRYING | PROBING, PING), inactive=3) == "IP"   # streak broken
    assert run(health, (0, PING), (0, PING), inactive=3) == "IP"
    assert run(health, (0, PING), inactive=3) == "AX"


def test_script_marks() -> None:
    health = Health(0)
    assert run(health, (INACTIVE | PROBING, SCRIPT), inactive=5) == "IP"   # at once
    assert run(health, (0, SCRIPT), inactive=5) == "AX"                    # at once too
    assert run(health, (TRYING, SCRIPT), probing=2) == "TX"                # a strike
    assert run(health, (TRYING, SCRIPT), probing=2) == "IX"


def test_disabled_is_sticky_except_for_rpc() -> None:
    health = Health(0)
    assert run(health, (DISABLED, SCRIPT)) == "DX"
    assert run(health, (0, PING), (0, SCRIPT), (TRYING, PING)) == "DX"
    assert run(health, (PROBING, RPC)) == "AP"


def test_rpc_sets_bits_verbatim_and_keeps_options() -> None:
    health = Health(NOPING | PROBING)
    assert run(health, (TRYING | PROBING, RPC)) == "TP"
    assert health.flags == NOPING | TRYING | PROBING
    assert run(health, (INACTIVE, RPC), (TRYING, RPC)) == "TX"


def test_return_value_says_when_usability_flipped() -> None:
    health = Health(0)
    th = Thresholds(2, 1)
    assert request_state(health, TRYING, PING, th) is False     # trying is still usable
    assert request_state(health, TRYING, PING, th) is True      # now inactive
    assert request_state(health, INACTIVE, SCRIPT, th) is False
    assert request_state(health, 0, PING, th) is True
