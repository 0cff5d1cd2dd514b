"""The routing API's HA1 cache (:mod:`.cache`) shared between worker processes through the
state bus (:mod:`kamrouter.modules.bus`, channel ``auth_cache``): a phone that registered
through one worker is not asked about again when its next REGISTER reaches another.

Messages: ``[username, realm, ha1s, expires]`` for an answer of the API (``ha1s``: ``[ha1,
ha1_sha256]``, null for an unknown user; ``expires``: on the machine's monotonic clock,
which every worker shares), ``[username, realm]`` to forget one entry, ``[]`` to forget all
(``auth.cache_flush``). Each worker keeps the cache in its own bounds (``api_cache_size``,
``api_negative_cache_size``). The later answer wins: they are the API's, one as good as
the other. A message that is not of this shape, with names over :data:`MAX_NAME` or HA1
values that are not hex digits of their length, is refused (``bus:dropped_malformed``),
and what is refused names no value (an HA1 is never logged).
"""
from __future__ import annotations

import math
from typing import Any

from kamrouter.modules.auth.cache import Entry, Ha1Cache, Key
from kamrouter.modules.auth.digest import HA1_LENGTH, is_hex
from kamrouter.modules.auth.subscribers import Subscriber
from kamrouter.modules.bus import StateBus

CHANNEL = "auth_cache"
#: Longest username or realm taken from another worker.
MAX_NAME = 256


class CacheBus:
    def __init__(self, bus: StateBus, cache: Ha1Cache) -> None:
        self.bus = bus
        self.cache = cache
        bus.register(CHANNEL, self)

    def put(self, key: Key, entry: Entry) -> None:
        """Tell the other workers what this one's cache just took."""
        self.bus.publish(CHANNEL, _encode(key, entry))

    def flush(self, key: Key | None) -> None:
        self.bus.publish(CHANNEL, list(key) if key is not None else [])

    def apply(self, payload: Any) -> None:
        if not isinstance(payload, list) or len(payload) not in (0, 2, 4):
            raise ValueError("not an auth cache change")
        if len(payload) == 4:
            self.cache.store(*_decode(payload))
        else:
            self.cache.flush(_key(payload) if payload else None)

    def dump(self) -> list[list[Any]]:
        return [_encode(key, entry) for key, entry in self.cache.entries()]

    def load(self, data: Any) -> None:
        if not isinstance(data, list):
            raise TypeError("not an auth cache dump")
        entries = [_decode(row) for row in data]
        self.cache.flush()
        for key, entry in entries:
            self.cache.store(key, entry)


def _encode(key: Key, entry: Entry) -> list[Any]:
    found = entry.subscriber
    return [*key, [found.ha1, found.ha1_sha256] if found is not None else None, entry.expires]


def _key(payload: list[Any]) -> Key:
    username, realm = payload[0], payload[1]
    if not all(isinstance(name, str) and 0 < len(name) <= MAX_NAME
               for name in (username, realm)):
        raise ValueError("not a username and realm")
    return username, realm


def _decode(payload: Any) -> tuple[Key, Entry]:
    if not isinstance(payload, list) or len(payload) != 4:
        raise ValueError("not an auth cache entry")
    key, ha1s, expires = _key(payload), payload[2], payload[3]
    if not isinstance(expires, int | float) or isinstance(expires, bool) \
            or not math.isfinite(expires):
        raise ValueError("not an expiry time")
    if ha1s is None:
        return key, Entry(None, float(expires))
    if not isinstance(ha1s, list) or len(ha1s) != 2 or not any(ha1s) or not all(
            isinstance(value, str) and (not value or is_hex(value, HA1_LENGTH[algorithm]))
            for value, algorithm in zip(ha1s, ("MD5", "SHA-256"), strict=True)):
        raise ValueError("not HA1 values")  # which: never said, it may be one
    return key, Entry(Subscriber(key[0], key[1], ha1s[0], "", ha1s[1]), float(expires))
