"""Branch ids, tags and Call-IDs from ``secrets`` (unguessable, RFC 3261 §8.1.1.7, §19.3)."""
from __future__ import annotations

import secrets

from .via import MAGIC_COOKIE


def generate_branch() -> str:
    """A Via branch with the RFC 3261 magic cookie and 80 random bits."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def generate_tag() -> str:
    """A From/To tag with 64 random bits."""
    return secrets.token_hex(8)


def generate_call_id(host: str | None = None) -> str:
    """A Call-ID with 128 random bits, ``@host`` appended when given."""
    value = secrets.token_hex(16)
    return f"{value}@{host}" if host else value
