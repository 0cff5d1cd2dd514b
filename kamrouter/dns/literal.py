"""IP literals: the one case of resolution that needs no lookup."""
from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=4096)
def ip_literal(host: str) -> str | None:
    """``host`` without IPv6 brackets if it is an IP address, else None."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return None
