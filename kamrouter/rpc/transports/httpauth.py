"""Credentials of the HTTP transport, read from ``rpc.http_auth_file``.

One credential per line (blank lines and ``#`` comments skipped): a line ``user:password``
accepts ``Authorization: Basic`` with that user and password, any other line is a token
accepted as ``Authorization: Bearer <token>``. Comparisons take the same time whatever the
offered value (``hmac.compare_digest`` against every credential of the scheme, no early
exit). The file must not be readable by others, nor writable by group or others
(:mod:`kamrouter.secretfile`).
"""
from __future__ import annotations

import binascii
import hmac
from dataclasses import dataclass

from kamrouter.secretfile import read_secret_lines

KEY = "rpc.http_auth_file"
#: The challenge sent with 401 answers.
CHALLENGE = b'Bearer realm="kamrouter", Basic realm="kamrouter"'


@dataclass(frozen=True)
class Credentials:
    basic: tuple[bytes, ...]    # b"user:password"
    bearer: tuple[bytes, ...]   # b"token"

    @classmethod
    def load(cls, path: str) -> Credentials:
        """Read ``path``; a :class:`ConfigError` naming ``rpc.http_auth_file`` says what to fix."""
        entries = read_secret_lines(path, KEY)
        return cls(tuple(e for e in entries if b":" in e),
                   tuple(e for e in entries if b":" not in e))

    def allows(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries one of the credentials."""
        if not authorization:
            return False
        scheme, _, offered = authorization.strip().partition(b" ")
        scheme = scheme.lower()
        offered = offered.strip()
        if scheme == b"basic":
            try:
                offered = binascii.a2b_base64(offered, strict_mode=True)
            except (binascii.Error, ValueError):
                return False
            accepted = self.basic
        elif scheme == b"bearer":
            accepted = self.bearer
        else:
            return False
        match = False
        for credential in accepted:
            match |= hmac.compare_digest(credential, offered)
        return match
