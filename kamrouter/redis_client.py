"""Opening a coredis client (on trio through anyio) for a ``redis_url``.

``redis://``/``rediss://``/``unix://`` URLs go to a single server; ``redis+cluster://h:p,h:p``
to a Redis Cluster; ``redis+sentinel://h:p,h:p/service/db`` to the primary of a Sentinel
service. Responses are decoded as UTF-8 text. :func:`url_problems` checks a URL at config
time (the modules' ``validate()``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import coredis
from coredis.connection import TCPLocation

SCHEMES = ("redis://", "rediss://", "redis+cluster://", "redis+sentinel://", "unix://")
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]+")
CONNECT_TIMEOUT = 2.0
STREAM_TIMEOUT = 5.0

# coredis reports a lost connection at INFO with an empty traceback ("NoneType: None"); the
# link logs the loss itself, naming the table and what it serves meanwhile.
logging.getLogger("coredis").setLevel(logging.WARNING)


def _hosts(netloc: str, default_port: int) -> list[TCPLocation]:
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        hosts.append(TCPLocation(host or "127.0.0.1", int(port) if port else default_port))
    return hosts


def url_problems(key: str, url: str) -> list[str]:
    """What is wrong with ``url`` for :func:`open_client`, each problem naming ``key``."""
    if not url:
        return [f"{key}: missing (e.g. \"redis://127.0.0.1:6379/0\")"]
    if not url.startswith(SCHEMES):
        return [f"{key}: {url!r} must start with one of {', '.join(SCHEMES)}"]
    parts = urlsplit(url)
    try:
        if parts.scheme in ("redis+cluster", "redis+sentinel"):
            _hosts(parts.netloc, 0)
        elif parts.scheme != "unix":
            parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return [f"{key}: {url!r} has a malformed host:port"]
    if parts.scheme == "redis+sentinel" and not parts.path.strip("/"):
        return [f"{key}: {url!r}: expected redis+sentinel://host:port[,...]/service[/db]"]
    if parts.scheme == "unix" and not parts.path:
        return [f"{key}: {url!r}: expected unix:///path/to/redis.sock[?db=N]"]
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        return [f"{key}: {url!r}: expected {parts.scheme}://host[:port][/db]"]
    return []


def prefix_problems(key: str, prefix: str) -> list[str]:
    """A key prefix keeps to letters, digits and ``_.:-`` (no glob or hash-tag characters)."""
    if _PREFIX.fullmatch(prefix):
        return []
    return [f"{key}: {prefix!r} may only contain letters, digits, '_', '.', ':', '-'"]


@asynccontextmanager
async def open_client(url: str) -> AsyncIterator[Any]:
    """A connected-on-demand client; leaving the context closes its connections."""
    timeouts: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT,
                                "stream_timeout": STREAM_TIMEOUT, "decode_responses": True}
    parts = urlsplit(url)
    if parts.scheme == "redis+cluster":
        client: Any = coredis.RedisCluster(startup_nodes=_hosts(parts.netloc, 6379), **timeouts)
        async with client:
            yield client
    elif parts.scheme == "redis+sentinel":
        service, _, db = parts.path.strip("/").partition("/")
        if not service:
            raise ValueError(f"{url!r}: expected redis+sentinel://host:port[,...]/service[/db]")
        credentials = {"username": parts.username or None, "password": parts.password or None}
        async with coredis.Sentinel(_hosts(parts.netloc, 26379), **timeouts) as sentinel:
            primary = sentinel.primary_for(service, db=int(db or 0),  # type: ignore[call-overload]
                                           **credentials)
            async with primary:
                yield primary
    else:
        client = coredis.Redis.from_url(url, **timeouts)
        async with client:
            yield client
