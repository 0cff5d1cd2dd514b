"""The ``[registrar]`` config section (Kamailio's registrar modparams and defaults)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kamrouter.config import Range, range_problems


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
        problems = range_problems(self, RANGES)
        if self.max_expires and self.max_expires < self.min_expires:
            problems.append(f"max_expires: {self.max_expires} is below min_expires "
                            f"{self.min_expires}")
        return problems


#: A year bounds every interval: a larger one is a typo, and would outlive any binding.
RANGES = {"default_expires": Range(1, 31_536_000, "s"), "min_expires": Range(0, 31_536_000, "s"),
          "max_expires": Range(1, 31_536_000, "s", off=0), "min_expires_mode": Range(0, 1),
          "default_q": Range(0, 1000, off=-1), "max_contacts": Range(1, 100_000, off=0),
          "retry_after": Range(1, 86_400, "s", off=0)}
