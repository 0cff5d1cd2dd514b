"""Digest computations of RFC 7616 (MD5 and SHA-256; RFC 8760 names), sans-IO."""
from __future__ import annotations

import hashlib

#: Algorithm name → hash function name.
ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256"}
#: Hex digits of an HA1 per algorithm.
HA1_LENGTH = {"MD5": 32, "SHA-256": 64}
_HEX = frozenset("0123456789abcdef")


def is_hex(value: str, size: int) -> bool:
    """``value`` is ``size`` lower-case hex digits (an HA1 as stored)."""
    return len(value) == size and set(value) <= _HEX


#: The constructors themselves: hashlib.new(name) looks the name up on every call.
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def h(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode()).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    return h(algorithm, f"{username}:{realm}:{password}")


def response(algorithm: str, ha1_value: str, nonce: str, method: str, uri: str, *,
             qop: str | None = None, nc: str | None = None, cnonce: str | None = None,
             body: bytes = b"") -> str:
    """The expected ``response`` parameter (qop auth, auth-int, or none)."""
    if qop == "auth-int":
        body_hash = _HASHES[algorithm](body).hexdigest()
        ha2 = h(algorithm, f"{method}:{uri}:{body_hash}")
    else:
        ha2 = h(algorithm, f"{method}:{uri}")
    if qop:
        return h(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(algorithm, f"{ha1_value}:{nonce}:{ha2}")
