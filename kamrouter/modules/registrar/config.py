"""The ``[registrar]`` config section (Kamailio's registrar modparams and defaults)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class RegistrarConfig:
    #: Seconds a contact is registered for when neither its ``expires`` param nor an
    #: Expires header says.
    default_expires: int = 3600
    #: Shorter requested intervals are raised to this (``min_expires_mode = 0``) or refused
    #: with 423 Interval Too Brief and a Min-Expires header (``min_expires_mode = 1``).
    min_expires: int = 60
    min_expires_mode: int = 0
    #: Longer requested intervals are lowered to this; 0: no limit.
    max_expires: int = 0
    #: q of contacts without a ``q`` param, in 1/1000 (-1: unspecified, sorts last).
    default_q: int = -1
    #: Bindings per AoR; a REGISTER that would exceed it gets 503 (0: no limit).
    max_contacts: int = 0
    #: Seconds in the Retry-After of that 503 (0: no header).
    retry_after: int = 0
    #: lookup() appends the AoR's other contacts as branches (parallel forking).
    append_branches: bool = True
    #: Store the REGISTER's Path headers with its contacts and use them as the route set on
    #: lookup (RFC 3327). ``path_mode``: "lazy" echoes Path in the 200 OK only when the UA
    #: sent ``Supported: path``; "off" never; "strict" refuses (420) a Path without it.
    use_path: bool = False
    path_mode: Literal["off", "lazy", "strict"] = "lazy"

    def validate(self) -> list[str]:
        problems = []
        for key in ("default_expires", "min_expires", "max_expires", "max_contacts",
                    "retry_after"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.min_expires_mode not in (0, 1):
            problems.append(f"min_expires_mode: expected 0 or 1, got {self.min_expires_mode}")
        if not (self.default_q == -1 or 0 <= self.default_q <= 1000):
            problems.append(f"default_q: expected -1 or 0..1000, got {self.default_q}")
        if self.max_expires and self.max_expires < self.min_expires:
            problems.append(f"max_expires: {self.max_expires} is below min_expires "
                            f"{self.min_expires}")
        return problems
