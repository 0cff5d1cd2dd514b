"""Timer values and policy knobs of the transaction layer (seconds, not ms)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TmParams:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    #: Non-INVITE: wait for a final reply. INVITE: wait for the first reply of any kind.
    fr_timer: float = 30.0
    #: INVITE branch after a provisional reply: wait for the final reply.
    fr_inv_timer: float = 120.0
    #: Linger after completion to absorb retransmissions (Kamailio ``wt_timer``); replaces
    #: RFC 3261 timers D, I, J, K and RFC 6026 timer L so memory is bounded by it.
    wait_timer: float = 5.0
    auto_100: bool = True
    auto_100_reason: str = "Trying"
    max_transactions: int = 100_000

    @property
    def timer_b(self) -> float:
        """64*T1: how long a final non-2xx to an INVITE is retransmitted waiting for ACK."""
        return 64 * self.t1
