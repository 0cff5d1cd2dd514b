"""Stateless signed nonces and bounded nonce-count tracking (replay protection).

A nonce is ``base64url(issued (4 bytes) | issuer (1) | random (7) | MAC(secret, all three))``, the MAC being
keyed BLAKE2s with a 16-byte digest (a PRF like HMAC-SHA256, at a third of its cost):
the router keeps no state per challenge; a nonce it did not sign, or one older than
``nonce_expire``, is answered stale. Nonce-counts are remembered per used nonce in a bounded
FIFO; the issue time of the newest forgotten nonce is kept, and any nonce not remembered and
not newer than that is refused as stale — a forgotten nonce is never replayable. The last
nonce-count may come again from the same request (same Call-ID, CSeq and branch) within
``RETRANSMISSION_WINDOW``: over UDP that is a retransmission, not a replay (tm or the
registrar's CSeq check absorb it). Likewise a retransmitted request that is challenged again
gets the nonce of its first challenge (the last ``RECENT_CHALLENGES`` are remembered), so
the challenge is the same bytes and the UA takes it for a retransmission too, not for a
second challenge of a request it already answered (sipp fails such a call).

With ``[core] workers`` the nonce-counts live in the worker that issued the nonce (the
``issuer`` byte, its index): another worker answers that nonce stale, so a captured request
replayed towards another worker (another source port hashes to another worker) is challenged
again instead of being accepted once per worker. A phone keeps its 4-tuple or connection,
hence its worker; one that moves gets one extra challenge.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections import OrderedDict
from enum import Enum

_RAW = 4 + 8 + 16
#: Seconds a request may be retransmitted (64*T1, the life of a non-INVITE transaction).
RETRANSMISSION_WINDOW = 32.0
#: Challenged requests whose nonce a retransmission gets again (a bounded FIFO).
RECENT_CHALLENGES = 50_000


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"      # expired, forgotten, or not ours: re-challenge with stale=true
    REPLAYED = "replayed"


class Nonces:
    def __init__(self, secret: bytes, lifetime: int, cache_size: int, issuer: int = 0) -> None:
        #: BLAKE2s takes keys of up to 32 bytes: a longer secret is hashed down to one.
        secret = secret or os.urandom(32)
        self._key = secret if len(secret) <= 32 else hashlib.sha256(secret).digest()
        self.lifetime = lifetime
        #: This process's worker index (one byte): only its own nonces are valid here.
        self._issuer = struct.pack(">B", issuer & 0xFF)
        #: nonce -> (highest nonce-count, request it came with, when)
        self._counts: OrderedDict[str, tuple[int, str, float]] = OrderedDict()
        self._cache_size = cache_size
        self._forgotten_up_to = -1
        #: request -> (nonce, when) of the latest challenges
        self._challenged: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def _sign(self, head: bytes) -> bytes:
        return hashlib.blake2s(head, key=self._key, digest_size=16).digest()

    def make(self, now: float, request: str = "") -> str:
        """A new nonce, or for a retransmission of ``request`` (its Call-ID, CSeq and branch)
        within RETRANSMISSION_WINDOW the one its first challenge had (if that has at least
        half its lifetime left)."""
        if request:
            earlier = self._challenged.get(request)
            if earlier is not None and now - earlier[1] <= min(RETRANSMISSION_WINDOW,
                                                               self.lifetime / 2):
                return earlier[0]
        head = struct.pack(">I", int(now) & 0xFFFFFFFF) + self._issuer + os.urandom(7)
        nonce = base64.urlsafe_b64encode(head + self._sign(head)).decode().rstrip("=")
        if request:
            challenged = self._challenged
            challenged[request] = (nonce, now)
            if len(challenged) > RECENT_CHALLENGES:
                challenged.popitem(last=False)
        return nonce

    def issued(self, nonce: str) -> int | None:
        """The issue time of a nonce this process signed, else None."""
        if len(nonce) != 38:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "==")
        except ValueError:
            return None
        if len(raw) != _RAW or raw[4:5] != self._issuer \
                or not hmac.compare_digest(raw[12:], self._sign(raw[:12])):
            return None
        return struct.unpack(">I", raw[:4])[0]

    def check(self, nonce: str, now: float, nc: str | None, request: str = "") -> NonceState:
        """Validate ``nonce`` and its ``nc`` (hex nonce-count; None without qop) for
        ``request`` (its Call-ID, CSeq and branch). Nothing is recorded: :meth:`use` does,
        once the response proved right (so wrong guesses cannot burn nonce-counts)."""
        issued = self.issued(nonce)
        if issued is None or not 0 <= int(now) - issued <= self.lifetime:
            return NonceState.STALE
        if nc is None:
            return NonceState.VALID
        count = _count(nc)
        if count is None:
            return NonceState.REPLAYED
        last = self._counts.get(nonce)
        if last is None:
            return NonceState.STALE if issued <= self._forgotten_up_to else NonceState.VALID
        last_count, last_request, when = last
        if count > last_count:
            return NonceState.VALID
        if count == last_count and request and request == last_request \
                and now - when <= RETRANSMISSION_WINDOW:
            return NonceState.VALID
        return NonceState.REPLAYED

    def use(self, nonce: str, nc: str, now: float, request: str = "") -> None:
        """Remember ``nc`` as the highest nonce-count seen for ``nonce``."""
        count = _count(nc)
        if count is None:
            return
        last = self._counts.get(nonce)
        if last is not None:
            if count > last[0]:
                self._counts[nonce] = (count, request, now)
            return
        self._counts[nonce] = (count, request, now)
        while len(self._counts) > self._cache_size:
            old, _ = self._counts.popitem(last=False)
            self._forgotten_up_to = max(self._forgotten_up_to, self.issued(old) or 0)



def _count(nc: str) -> int | None:
    if len(nc) != 8:
        return None
    try:
        return int(nc, 16)
    except ValueError:
        return None
