"""The ``[usrloc]`` config section (names and defaults after Kamailio's usrloc modparams)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class UsrlocConfig:
    #: "memory": bindings are lost at restart (Kamailio db_mode 0); "sqlite": every change is
    #: written through to ``db_file`` before the reply is sent and loaded at start (db_mode 1).
    db_mode: Literal["memory", "sqlite"] = "memory"
    db_file: str = "location.sqlite"
    #: Seconds between sweeps that delete expired bindings (and emit
    #: ``usrloc:contact-expired``). Expired bindings are never visible in between.
    timer_interval: float = 60.0
    #: False: the AoR is the user part only (Kamailio use_domain 0); True: user@domain.
    use_domain: bool = False
    #: How a Contact without +sip.instance matches a stored binding (Kamailio
    #: matching_mode): 0 contact URI, 1 contact URI and Call-ID, 2 contact URI and Path.
    matching_mode: int = 0
    #: log2 of the slot count shown by ul.dump (layout only, not a limit).
    hash_size: int = 10

    def validate(self) -> list[str]:
        problems = []
        if self.timer_interval <= 0:
            problems.append(f"timer_interval: must be > 0 seconds, got {self.timer_interval:g}")
        if self.matching_mode not in (0, 1, 2):
            problems.append(f"matching_mode: expected 0, 1 or 2, got {self.matching_mode}")
        if not 1 <= self.hash_size <= 20:
            problems.append(f"hash_size: out of range 1..20, got {self.hash_size}")
        return problems
