"""The ``[nathelper]`` config section (Kamailio's nathelper keepalive modparams)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NathelperConfig:
    #: Seconds between keepalive rounds: a SIP OPTIONS to each binding (0: no keepalives).
    natping_interval: int = 0
    #: Only bindings registered from behind NAT (with a received address) are pinged.
    ping_nated_only: bool = True
    sipping_from: str = "sip:pinger@kamrouter.invalid"
    sipping_method: str = "OPTIONS"
    #: Seconds without any reply after which a pinged binding is removed (0: never).
    keepalive_timeout: int = 0
    #: usrloc table whose bindings are pinged.
    table: str = "location"

    def validate(self) -> list[str]:
        problems = []
        if self.natping_interval < 0:
            problems.append(f"natping_interval: must be >= 0, got {self.natping_interval}")
        if self.keepalive_timeout < 0:
            problems.append(f"keepalive_timeout: must be >= 0, got {self.keepalive_timeout}")
        if not self.sipping_from.startswith(("sip:", "sips:")):
            problems.append(f"sipping_from: {self.sipping_from!r} is not a sip: URI")
        if self.sipping_method not in ("OPTIONS", "INFO", "NOTIFY"):
            problems.append(f"sipping_method: expected OPTIONS, INFO or NOTIFY, got "
                            f"{self.sipping_method!r}")
        return problems
