"""Keeping a table in Redis while every node serves reads from its own coherent copy.

Layout: one Redis string per item, ``{<prefix>:<table>}:<key>`` (the hash tag puts a whole
table in one cluster slot, so one Lua script can see all of an item's state), holding the
integer's decimal text or ``s:`` + the string, with the item's expiry as the key's TTL.

Writes: scripts and RPC change the local copy at once (:class:`~.table.Table` reports each
change as an op); the ops queue here (ordered, bounded) and one task sends them in pipelined
batches. Each op runs as one Lua script that applies Kamailio's expiry rules atomically and
PUBLISHes the item's resulting state on the table's channel, so every node (the writer
included) sees every change in Redis's own order.

Coherence: a node applies published states to its copy, except for keys that have local
writes still on their way (``pending``): their echo is awaited and the echo of the last one
carries the authoritative state (e.g. an ``inc`` that raced with another node's).

(Re)connecting: subscribe first, send what queued while away, read the whole table (SCAN +
GET/PTTL), swap it in at once, then apply the messages that arrived meanwhile. While Redis
is away the node keeps serving its last copy; the loss is logged and counted.

Data loss: beside the items each table has an epoch key, ``{<prefix>:<table>}#epoch``, which
only goes away with the data (a Redis restarted empty, FLUSHALL, failover to an empty
replica; ``htable.flush`` keeps it). A node that synced before and finds it gone does not
take the empty table: as ``redis_data_loss`` says, it re-seeds Redis from its own copy
("reseed") or keeps serving its copy without syncing until an operator's ``htable.reload``
("refuse"); either way it logs it and counts ``htable:<table>-redis_lost``.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from itertools import islice
from typing import Any

import anyio
import trio
from coredis.exceptions import RedisError
from coredis.tokens import PureToken

from kamrouter.modules.htable.config import TableConfig
from kamrouter.modules.htable.table import Op, Row, Table, Value
from kamrouter.stats import Counter

log = logging.getLogger("kamrouter.htable")

BATCH = 256
RETRY_MIN, RETRY_MAX = 0.05, 2.0

# KEYS[1] item key. ARGV: channel, origin, key name, op, autoexpire ms, updateexpire 0|1,
# initval ('' = none), op argument (value / delta / expire ms), explicit expire ms ('' = none).
_APPLY_OP = """
local key, channel, origin, name, op = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local autoexpire, refresh, initval = tonumber(ARGV[5]), ARGV[6] == '1', ARGV[7]
local arg, explicit = ARGV[8], ARGV[9]
if op == 'delete' then
  redis.call('DEL', key)
elseif op == 'expire' then
  if redis.call('EXISTS', key) == 1 then
    if tonumber(arg) > 0 then redis.call('PEXPIRE', key, arg) else redis.call('PERSIST', key) end
  end
elseif op == 'set' then
  local exists = redis.call('EXISTS', key) == 1
  if explicit ~= '' then
    if tonumber(explicit) > 0 then redis.call('SET', key, arg, 'PX', explicit)
    else redis.call('SET', key, arg) end
  elseif exists and not (autoexpire > 0 and refresh) then
    redis.call('SET', key, arg, 'KEEPTTL')
  elseif autoexpire > 0 then
    redis.call('SET', key, arg, 'PX', autoexpire)
  else
    redis.call('SET', key, arg)
  end
elseif op == 'inc' then
  local current = redis.call('GET', key)
  if current then
    if string.sub(current, 1, 2) ~= 's:' then
      redis.call('INCRBY', key, arg)
      if autoexpire > 0 and refresh then redis.call('PEXPIRE', key, autoexpire) end
    end
  elseif initval ~= '' then
    if autoexpire > 0 then redis.call('SET', key, initval, 'PX', autoexpire)
    else redis.call('SET', key, initval) end
    redis.call('INCRBY', key, arg)
  end
end
local value = redis.call('GET', key)
if value then
  redis.call('PUBLISH', channel, cjson.encode({o=origin, k=name, v=value, t=redis.call('PTTL', key)}))
else
  redis.call('PUBLISH', channel, cjson.encode({o=origin, k=name}))
end
return 1
"""


def encode(value: Value) -> str:
    return "s:" + value if type(value) is str else str(value)


def decode(text: str) -> Value:
    return text[2:] if text.startswith("s:") else int(text)


class ResyncNeeded(Exception):
    """Local writes were dropped (queue full): the copy must be read again from Redis."""


class RedisDataLost(Exception):
    """Redis lost the table and ``redis_data_loss = "refuse"``: keep the local copy."""


class LinkStats:
    def __init__(self, errors: Counter, resyncs: Counter, dropped: Counter,
                 lost: Counter) -> None:
        self.errors = errors
        self.resyncs = resyncs
        self.dropped = dropped
        self.lost = lost

    @classmethod
    def named(cls, name: str, counter: Callable[[str, str], Counter] = Counter) -> LinkStats:
        """``htable:<name>-redis_errors`` and friends; ``counter`` registers them."""
        return cls(*(counter("htable", f"{name}-redis_{what}")
                     for what in ("errors", "resyncs", "dropped", "lost")))


class RedisLink:
    """The bridge between one :class:`Table` and Redis (one task: :meth:`run`)."""

    def __init__(self, table: Table, config: TableConfig,
                 connect: Callable[[], AbstractAsyncContextManager[Any]],
                 stats: LinkStats | None = None) -> None:
        self.table = table
        self.connect = connect
        self.stats = stats or LinkStats.named(config.name)
        self.node_id = uuid.uuid4().hex
        self.key_prefix = f"{{{config.redis_prefix}:{config.name}}}:"
        self.channel = f"{config.redis_prefix}:{config.name}:changes"
        #: Outside ``key_prefix*``: never read or flushed as an item.
        self.epoch_key = f"{{{config.redis_prefix}:{config.name}}}#epoch"
        self.on_data_loss = config.redis_data_loss
        #: The table's epoch in Redis at the last sync (None before the first).
        self.epoch: str | None = None
        #: htable.reload asked for Redis's content even if Redis lost the table.
        self._accept_loss = False
        self._refusing = False
        self.limit = config.redis_queue
        self._rules = (str(config.autoexpire * 1000), "1" if config.updateexpire else "0",
                       "" if config.initval is None else str(config.initval))
        self.queue: deque[Op] = deque()
        #: key -> local ops whose echo has not come back yet
        self.pending: dict[str, int] = {}
        self.flushes_pending = 0
        self.connected = False
        #: Set once the first full sync is done (start-up waits for it).
        self.synced = trio.Event()
        self._work = trio.Event()
        self._resync_wanted = False
        self._buffer: list[str] | None = None
        table.on_write = self.enqueue

    # -- the local side --------------------------------------------------------------------
    def enqueue(self, op: Op) -> None:
        """Queue a local write for Redis (called by the table, synchronously)."""
        if len(self.queue) >= self.limit:
            if not self._resync_wanted:
                log.error("htable %s: %d writes waiting for Redis, dropping new ones; the "
                          "table will be read again from Redis", self.table.name, self.limit)
            self.stats.dropped.value += 1
            self._resync_wanted = True
            return
        self.queue.append(op)
        self._count_pending(op)
        self._work.set()

    def _count_pending(self, op: Op) -> None:
        if op[0] == "flush":
            self.flushes_pending += 1
        else:
            self.pending[op[1]] = self.pending.get(op[1], 0) + 1

    async def wait_sent(self) -> None:
        """Return once everything queued so far has reached Redis."""
        while self.queue:
            await trio.sleep(0.005)

    async def resync(self, timeout: float = 10.0) -> bool:
        """Read the whole table from Redis again (htable.reload); False if Redis did not
        answer within ``timeout`` seconds."""
        before = self.stats.resyncs.value
        self._resync_wanted = True
        self._accept_loss = True
        self._work.set()
        with trio.move_on_after(timeout):
            while self.stats.resyncs.value == before:
                await trio.sleep(0.01)
            return True
        return False

    # -- messages from Redis ---------------------------------------------------------------
    def on_message(self, data: str) -> None:
        try:
            message = json.loads(data)
            own = message.get("o") == self.node_id
            if "f" in message:
                self._on_flush(own)
                return
            key = message["k"]
            if own:
                left = self.pending.get(key, 0) - 1
                if left > 0:
                    self.pending[key] = left
                    return
                self.pending.pop(key, None)
                if self.flushes_pending:
                    return  # our own flush, still ahead, wipes this state anyway
            elif self.pending.get(key) or self.flushes_pending:
                return  # our own later write (already applied locally) supersedes it
            value = message.get("v")
            if value is None:
                self.table.apply_delete(key)
            else:
                ttl = message["t"]
                self.table.apply(key, decode(value), ttl / 1000 if ttl >= 0 else None)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("htable %s: ignoring a malformed change message %r (%s)",
                        self.table.name, data[:200], exc)

    def _on_flush(self, own: bool) -> None:
        if own:
            self.flushes_pending = max(0, self.flushes_pending - 1)
        elif not self.flushes_pending:
            self.table.apply_flush(keep=self.pending)

    # -- the connection --------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, sync and relay changes forever, reconnecting with backoff."""
        delay = RETRY_MIN
        while True:
            try:
                async with self.connect() as client:
                    await self._session(client)
            except BaseException as exc:  # noqa: BLE001 - any failure: reconnect and resync
                problems = _leaves(exc)
                cancelled = [p for p in problems if isinstance(p, trio.Cancelled)]
                if cancelled:  # shutting down; drop the client's clean-up noise
                    raise cancelled[0] from None
                if not isinstance(exc, Exception):
                    raise
                self._buffer = None
                was_connected, self.connected = self.connected, False
                if any(isinstance(p, ResyncNeeded) for p in problems):
                    log.warning("htable %s: reading the table again from Redis", self.table.name)
                    continue
                if any(isinstance(p, RedisDataLost) for p in problems):
                    await trio.sleep(RETRY_MAX)  # logged once; look again until reloaded
                    continue
                self.stats.errors.value += 1
                if was_connected:
                    delay = RETRY_MIN
                    log.warning("htable %s: Redis connection lost (%s); serving the last copy "
                                "(%d items) until it is back", self.table.name,
                                _describe(problems), len(self.table))
                elif delay == RETRY_MIN:
                    log.warning("htable %s: cannot reach Redis (%s); retrying",
                                self.table.name, _describe(problems))
                if not all(_is_redis_problem(p) for p in problems):
                    log.error("htable %s: unexpected error in the Redis link", self.table.name,
                              exc_info=exc)
            await trio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _session(self, client: Any) -> None:
        async with client.pubsub(channels=[self.channel], ignore_subscribe_messages=True,
                                 retry_policy=None) as pubsub:
            self._buffer = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, pubsub)
                self._recount_pending()
                self._resync_wanted = False
                await self._check_epoch(client)
                await self.send_queued(client)
                await client.set(self.epoch_key, uuid.uuid4().hex, condition=PureToken.NX)
                self.epoch = await client.get(self.epoch_key)
                rows = await self._read_all(client)
                self.table.replace_all(rows, keep=list(self.pending))
                buffered, self._buffer = self._buffer, None
                for data in buffered:
                    self.on_message(data)
                self.connected = True
                self.stats.resyncs.value += 1
                log.info("htable %s: synced %d items from Redis", self.table.name, len(rows))
                self.synced.set()
                await self._write_forever(client)

    async def _check_epoch(self, client: Any) -> None:
        """Before syncing: has Redis lost the table since the last sync? Then re-seed it from
        the local copy or refuse to sync, as configured."""
        accept, self._accept_loss = self._accept_loss, False
        if self.epoch is None or accept or await client.get(self.epoch_key) is not None:
            self._refusing = False
            return
        if self.on_data_loss == "refuse":
            if not self._refusing:
                self.stats.lost.value += 1
                log.error("htable %s: Redis lost the table (restarted empty or flushed); "
                          "redis_data_loss = \"refuse\": serving this node's copy (%d items) "
                          "without syncing until htable.reload takes Redis's content",
                          self.table.name, len(self.table))
            self._refusing = True
            raise RedisDataLost()
        self.stats.lost.value += 1
        log.warning("htable %s: Redis lost the table (restarted empty or flushed); re-seeding "
                    "it from this node's copy (%d items)", self.table.name, len(self.table))
        self._reseed()

    def _reseed(self) -> None:
        """Queue the local copy as writes; it already holds the effect of every queued op."""
        self.queue.clear()
        for key, value, left in self.table.rows():
            # An explicit expiry of 0 means none; a tiny remainder must not become none.
            self.queue.append(("set", key, value, 0 if left is None else max(left, 0.001)))
        self._recount_pending()

    async def _read(self, pubsub: Any) -> None:
        async for message in pubsub:
            data = message["data"]
            if self._buffer is not None:
                self._buffer.append(data)
            else:
                self.on_message(data)

    def _recount_pending(self) -> None:
        """Echoes of writes sent on a lost connection never come: count only what is queued."""
        self.pending.clear()
        self.flushes_pending = 0
        for op in self.queue:
            self._count_pending(op)

    async def _write_forever(self, client: Any) -> None:
        while True:
            if not self.queue:
                if self._resync_wanted:
                    raise ResyncNeeded()
                self._work = trio.Event()
                await self._work.wait()
            await self.send_queued(client)

    async def send_queued(self, client: Any) -> None:
        """Send every queued op in order; an op leaves the queue once Redis has it."""
        script = client.register_script(_APPLY_OP)
        while self.queue:
            if self.queue[0][0] == "flush":
                await self._flush_remote(client)
                self.queue.popleft()
                continue
            batch = list(islice(self.queue, BATCH))
            cut = next((i for i, op in enumerate(batch) if op[0] == "flush"), len(batch))
            batch = batch[:cut]
            async with client.pipeline(transaction=False) as pipe:
                for op in batch:
                    self._send_op(script, pipe, op)
            for _ in batch:
                self.queue.popleft()

    def _send_op(self, script: Any, pipe: Any, op: Op) -> Any:
        kind, key = op[0], op[1]
        arg, explicit = "", ""
        if kind == "set":
            arg = encode(op[2])
            explicit = "" if op[3] is None else str(int(op[3] * 1000))
        elif kind in ("inc", "expire"):
            arg = str(op[2]) if kind == "inc" else str(int(op[2] * 1000))
        return script(keys=[self.key_prefix + key],
                            args=[self.channel, self.node_id, key, kind, *self._rules, arg,
                                  explicit], client=pipe)

    async def _flush_remote(self, client: Any) -> None:
        doomed: list[str] = []
        async for name in client.scan_iter(match=self.key_prefix + "*", count=1000):
            doomed.append(name)
            if len(doomed) >= 500:
                await client.unlink(doomed)
                doomed = []
        if doomed:
            await client.unlink(doomed)
        await client.publish(self.channel, json.dumps({"o": self.node_id, "f": 1}))

    async def _read_all(self, client: Any) -> list[Row]:
        names = [name async for name in client.scan_iter(match=self.key_prefix + "*",
                                                          count=1000)]
        rows: list[Row] = []
        skip = len(self.key_prefix)
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            async with client.pipeline(transaction=False) as pipe:
                replies = [(pipe.get(name), pipe.pttl(name)) for name in chunk]
            for name, (get, pttl) in zip(chunk, replies):
                text, ttl = await get, await pttl
                if text is None:
                    continue  # expired between SCAN and GET
                rows.append((name[skip:], decode(text), ttl / 1000 if ttl >= 0 else None))
        return rows


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _is_redis_problem(exc: BaseException) -> bool:
    """A lost or refused connection (worth a warning), not a bug (worth a traceback)."""
    return isinstance(exc, (RedisError, OSError, TimeoutError, ResyncNeeded, RedisDataLost,
                            trio.BrokenResourceError, trio.ClosedResourceError,
                            anyio.BrokenResourceError, anyio.ClosedResourceError,
                            anyio.EndOfStream))


def _describe(problems: list[BaseException]) -> str:
    return "; ".join(f"{type(p).__name__}: {p}" for p in problems[:3])
