"""A local copy kept coherent with Redis: the generic half of a Redis-backed table.

A subclass (htable's :class:`~kamrouter.modules.htable.redis_link.RedisLink`, usrloc's
:class:`~kamrouter.modules.usrloc.redis_store.RedisLocation`) says what its ops are, how they
are sent (Lua scripts that change Redis and PUBLISH the resulting state of each key they
changed on the table's channel), how a published state is applied to the local copy and
how the whole content is read. This base does the rest, the same way for both:

Layout: every Redis key of a table starts with ``{<prefix>:<name>}`` (the hash tag puts the
whole table in one cluster slot, so SCAN of one node sees it all).

Writes: the local copy changes at once; the ops queue here (ordered, bounded by ``limit``)
and one task sends them in pipelined batches (write-behind: the caller never waits for
Redis), one round trip each: the Lua script is loaded once per connection (SCRIPT LOAD; on
every node of a cluster) and called by its SHA, so no SCRIPT EXISTS precedes a batch; a
Redis that lost its scripts answers NOSCRIPT, which ends the connection like any error, and
the next one loads the script again before sending the batch anew. Every node, the writer
included, sees every change in Redis's own order.

Coherence: a node applies published states to its copy, except for keys that have local
writes still on their way (``pending``): their echo is awaited and the echo of the last one
carries the authoritative state (e.g. an ``inc`` that raced with another node's).

(Re)connecting: subscribe first, send what queued while away, read the whole table, swap it
in at once, then apply the messages that arrived meanwhile. While Redis is away the node
keeps serving its last copy; the loss is logged and counted.

Data loss: beside the data each table has an epoch key, ``{<prefix>:<name>}#epoch``, which
only goes away with the data (a Redis restarted empty, FLUSHALL, failover to an empty
replica). A node that synced before and finds it gone does not take the empty table: as
``on_data_loss`` says, it re-seeds Redis from its own copy ("reseed") or keeps serving its
copy without syncing until :meth:`resync` ("refuse"); either way it logs it and counts
``<group>:<name>-redis_lost``.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections import deque
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from functools import partial
from itertools import islice
from typing import Any

import anyio
import trio
from coredis.exceptions import RedisError
from coredis.tokens import PureToken

from kamrouter.stats import Counter

log = logging.getLogger("kamrouter.redis")

BATCH = 256
RETRY_MIN, RETRY_MAX = 0.05, 2.0

#: An op of the local copy; ``op[0]`` is its kind, and kind "flush" empties the table.
Op = tuple
#: Queues one call of the table's Lua script: ``call(keys, args)``.
ScriptCall = Callable[[list[str], list[str]], object]


class ResyncNeeded(Exception):
    """Local writes were dropped (queue full): the copy must be read again from Redis."""


class RedisDataLost(Exception):
    """Redis lost the table and ``on_data_loss == "refuse"``: keep the local copy."""


class LinkStats:
    def __init__(self, errors: Counter, resyncs: Counter, dropped: Counter,
                 lost: Counter) -> None:
        self.errors = errors
        self.resyncs = resyncs
        self.dropped = dropped
        self.lost = lost

    @classmethod
    def named(cls, group: str, name: str,
              counter: Callable[[str, str], Counter] = Counter) -> LinkStats:
        """``<group>:<name>-redis_errors`` and friends; ``counter`` registers them."""
        return cls(*(counter(group, f"{name}-redis_{what}")
                     for what in ("errors", "resyncs", "dropped", "lost")))


class RedisMirror:
    """The bridge between one local table and Redis (one task: :meth:`run`)."""

    #: The Lua script :meth:`send_op` runs (set by the subclass).
    script = ""

    def __init__(self, label: str, prefix: str, name: str,
                 connect: Callable[[], AbstractAsyncContextManager[Any]], stats: LinkStats,
                 limit: int, on_data_loss: str = "reseed") -> None:
        #: "htable bans", "usrloc location": names the table in log lines.
        self.label = label
        self.connect = connect
        self.stats = stats
        self.node_id = uuid.uuid4().hex
        self.key_prefix = f"{{{prefix}:{name}}}:"
        self.channel = f"{prefix}:{name}:changes"
        #: SCAN's pattern of the data keys (a name's glob characters taken literally).
        self._pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.key_prefix) + "*"
        #: Outside ``key_prefix*``: never read or flushed as data.
        self.epoch_key = f"{{{prefix}:{name}}}#epoch"
        self.on_data_loss = on_data_loss
        #: The table's epoch in Redis at the last sync (None before the first).
        self.epoch: str | None = None
        #: resync() asked for Redis's content even if Redis lost the table.
        self._accept_loss = False
        self._refusing = False
        self.limit = limit
        self.queue: deque[Op] = deque()
        #: key -> local ops whose echo has not come back yet
        self.pending: dict[Hashable, int] = {}
        self.flushes_pending = 0
        self.connected = False
        #: Set once the first full sync is done (start-up waits for it).
        self.synced = trio.Event()
        self._work = trio.Event()
        self._resync_wanted = False
        self._buffer: list[str] | None = None
        #: The SHA1 of ``script`` (SCRIPT LOAD answers it).
        self._sha = ""

    # -- what a subclass provides ------------------------------------------------------------
    def op_key(self, op: Op) -> Hashable:
        """The key whose state ``op`` (not a flush) changes, as :meth:`state_key` names it."""
        raise NotImplementedError

    def send_batch(self, call: ScriptCall, ops: list[Op]) -> None:
        """Queue ``ops`` (in order, no flush among them) as calls ``call(keys, args)`` of
        the script."""
        raise NotImplementedError

    def states(self, message: dict[str, Any]) -> list[Any]:
        """The resulting states of keys one published message carries, in Redis's order."""
        raise NotImplementedError

    def state_key(self, state: Any) -> Hashable:
        """The key a published state is of."""
        raise NotImplementedError

    def apply_state(self, key: Hashable, state: Any, own: bool) -> None:
        """Install the state another node's (or, ``own``, our own last) write left ``key``
        in."""
        raise NotImplementedError

    def apply_flush(self, keep: dict[Hashable, int]) -> None:
        """Another node flushed the table: empty the copy except the ``keep`` keys."""
        raise NotImplementedError

    async def read_all(self, client: Any) -> Any:
        """The whole table as Redis has it, in the form :meth:`replace_all` takes."""
        raise NotImplementedError

    def replace_all(self, content: Any, keep: list[Hashable]) -> None:
        """Swap ``content`` in as the copy; the ``keep`` keys keep their local state."""
        raise NotImplementedError

    def reseed_ops(self) -> list[Op]:
        """Ops that write the whole local copy to Redis (after Redis lost it)."""
        raise NotImplementedError

    def copy_size(self) -> int:
        """Entries in the local copy (for log lines)."""
        raise NotImplementedError

    # -- the local side --------------------------------------------------------------------
    def enqueue(self, op: Op) -> None:
        """Queue a local write for Redis (called by the table, synchronously)."""
        if len(self.queue) >= self.limit:
            if not self._resync_wanted:
                log.error("%s: %d writes waiting for Redis, dropping new ones; the table "
                          "will be read again from Redis", self.label, self.limit)
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
            key = self.op_key(op)
            self.pending[key] = self.pending.get(key, 0) + 1

    async def wait_sent(self) -> None:
        """Return once everything queued so far has reached Redis."""
        while self.queue:
            await trio.sleep(0.005)

    async def resync(self, timeout: float = 10.0) -> bool:
        """Read the whole table from Redis again (even after Redis lost it); False if Redis
        did not answer within ``timeout`` seconds."""
        before = self.stats.resyncs.value
        self._resync_wanted = True
        self._accept_loss = True
        self._work.set()
        with trio.move_on_after(timeout):
            while self.stats.resyncs.value == before:
                await trio.sleep(0.01)
            return True
        return False

    async def first_sync(self, timeout: float, url: str) -> None:
        """At start-up: wait (at most ``timeout`` s) until the table is read from Redis."""
        with trio.move_on_after(timeout):
            await self.synced.wait()
        if not self.synced.is_set():
            log.error("%s: no sync from Redis (%s) after %g s; serving an empty table until "
                      "Redis answers", self.label, url, timeout)

    async def hand_over(self, timeout: float) -> None:
        """At shutdown: send what is still queued, briefly, on a connection of its own."""
        if not self.queue:
            return
        with trio.move_on_after(timeout):
            try:
                async with self.connect() as client:
                    await self.load_script(client)
                    await self.send_queued(client)
            except Exception as exc:  # noqa: BLE001 - shutting down: report and go on
                log.warning("%s: %d writes not sent to Redis at shutdown (%s)", self.label,
                            len(self.queue), exc)
                return
        if self.queue:
            log.warning("%s: %d writes not sent to Redis at shutdown", self.label,
                        len(self.queue))

    # -- messages from Redis ---------------------------------------------------------------
    def on_message(self, data: str) -> None:
        try:
            message = json.loads(data)
            own = message.get("o") == self.node_id
            if "f" in message:
                self._on_flush(own)
                return
            for state in self.states(message):
                self._on_state(self.state_key(state), state, own)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            log.warning("%s: ignoring a malformed change message %r (%s)", self.label,
                        data[:200], exc)

    def _on_state(self, key: Hashable, state: Any, own: bool) -> None:
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
        self.apply_state(key, state, own)

    def _on_flush(self, own: bool) -> None:
        if own:
            self.flushes_pending = max(0, self.flushes_pending - 1)
        elif not self.flushes_pending:
            self.apply_flush(self.pending)

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
                    log.warning("%s: reading the table again from Redis", self.label)
                    continue
                if any(isinstance(p, RedisDataLost) for p in problems):
                    await trio.sleep(RETRY_MAX)  # logged once; look again until reloaded
                    continue
                self.stats.errors.value += 1
                if was_connected:
                    delay = RETRY_MIN
                    log.warning("%s: Redis connection lost (%s); serving the last copy "
                                "(%d entries) until it is back", self.label,
                                _describe(problems), self.copy_size())
                elif delay == RETRY_MIN:
                    log.warning("%s: cannot reach Redis (%s); retrying", self.label,
                                _describe(problems))
                if not all(_is_redis_problem(p) for p in problems):
                    log.error("%s: unexpected error in the Redis link", self.label,
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
                await self.load_script(client)
                await self.send_queued(client)
                await client.set(self.epoch_key, uuid.uuid4().hex, condition=PureToken.NX)
                self.epoch = await client.get(self.epoch_key)
                content = await self.read_all(client)
                self.replace_all(content, keep=list(self.pending))
                buffered, self._buffer = self._buffer, None
                for data in buffered:
                    self.on_message(data)
                self.connected = True
                self.stats.resyncs.value += 1
                log.info("%s: synced %d entries from Redis", self.label, self.copy_size())
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
                log.error("%s: Redis lost the table (restarted empty or flushed); "
                          "redis_data_loss = \"refuse\": serving this node's copy (%d entries) "
                          "without syncing until a reload takes Redis's content", self.label,
                          self.copy_size())
            self._refusing = True
            raise RedisDataLost()
        self.stats.lost.value += 1
        log.warning("%s: Redis lost the table (restarted empty or flushed); re-seeding it "
                    "from this node's copy (%d entries)", self.label, self.copy_size())
        # The local copy already holds the effect of every queued op.
        self.queue.clear()
        self.queue.extend(self.reseed_ops())
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

    async def load_script(self, client: Any) -> None:
        """Load the Lua script into Redis (every node of a cluster) for this connection."""
        self._sha = await client.script_load(self.script)

    async def send_queued(self, client: Any) -> None:
        """Send every queued op in order (after :meth:`load_script` on this connection); an
        op leaves the queue once Redis has it."""
        while self.queue:
            if self.queue[0][0] == "flush":
                await self._flush_remote(client)
                self.queue.popleft()
                continue
            batch = list(islice(self.queue, BATCH))
            cut = next((i for i, op in enumerate(batch) if op[0] == "flush"), len(batch))
            batch = batch[:cut]
            async with client.pipeline(transaction=False) as pipe:
                self.send_batch(partial(_evalsha, pipe, self._sha), batch)
            for _ in batch:
                self.queue.popleft()

    async def _flush_remote(self, client: Any) -> None:
        doomed: list[str] = []
        async for name in client.scan_iter(match=self._pattern, count=1000):
            doomed.append(name)
            if len(doomed) >= 500:
                await client.unlink(doomed)
                doomed = []
        if doomed:
            await client.unlink(doomed)
        await client.publish(self.channel, json.dumps({"o": self.node_id, "f": 1}))

    async def scan_keys(self, client: Any) -> list[str]:
        """Every data key of the table in Redis (the epoch key excluded)."""
        return [name async for name in client.scan_iter(match=self._pattern, count=1000)]


def _evalsha(pipe: Any, sha: str, keys: list[str], args: list[str]) -> object:
    return pipe.evalsha(sha, keys=keys, args=args)


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
