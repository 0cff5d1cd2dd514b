"""Kamailio's dispatcher hash, bit for bit, so ``dispatcher.hash`` and the hash algorithms
pick the same slot as Kamailio for the same input.

Each key is consumed as big-endian 32-bit words ``v`` (bytes read as C's signed ``char``, as
on x86), accumulating ``h += v ^ (v >> 3)``; the trailing 0-3 bytes form one more word.
After all keys ``h = (h + (h >> 11)) + ((h >> 13) + (h >> 23))``; a result of 0 becomes 1.
Verified against Kamailio 5.6.3 (tests/dispatcher/test_hashing.py), non-ASCII included.
"""
from __future__ import annotations

from kamrouter.sip import wire_bytes

_MASK = 0xFFFFFFFF
#: Signed value of each byte, as a C ``char`` on x86.
_SIGNED = tuple(b - 256 if b > 127 else b for b in range(256))


def _mix(h: int, data: bytes) -> int:
    signed = _SIGNED
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        v = ((signed[data[i]] << 24) + (signed[data[i + 1]] << 16)
             + (signed[data[i + 2]] << 8) + signed[data[i + 3]]) & _MASK
        h += v ^ (v >> 3)
    v = 0
    for byte in data[whole:]:
        v = ((v << 8) + signed[byte]) & _MASK
    return (h + (v ^ (v >> 3))) & _MASK


def ds_hash(key1: str | bytes | None, key2: str | bytes | None = None) -> int:
    """The 32-bit hash id of one or two keys (0 only when both are None)."""
    if key1 is None and key2 is None:
        return 0
    h = 0
    for key in (key1, key2):
        if key is not None:
            h = _mix(h, wire_bytes(key) if isinstance(key, str) else key)  # bytes as received
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & _MASK
    return h or 1


def hash_slot(hashid: int, nslots: int) -> int:
    """``dispatcher.hash``'s slot: ``hashid % nslots``, 0 when nslots is 0."""
    return hashid % nslots if nslots > 0 else 0


_DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def uri_hash_keys(scheme: str, user: str | None, host: str, port: int | None,
                  user_only: bool) -> tuple[str, str | None]:
    """Keys hashed by algorithms 1-3: the user, and ``host[:port]`` (port only when it is
    present and not the scheme's default); with ``user_only`` just the user."""
    if user_only:
        return user or "", None
    if port is not None and port != _DEFAULT_PORTS.get(scheme.lower(), 5060):
        return user or "", f"{host}:{port}"
    return user or "", host
