"""A location table shared through Redis (the generic half: :mod:`kamrouter.redis_mirror`).

Layout: one Redis hash per AoR, ``{<prefix>:<table>}:<aor>``, field = the binding's ruid,
value = the binding as a compact JSON array (:meth:`Binding.as_row`, ``expires`` as absolute
Unix time). The hash expires (PEXPIREAT) with its latest binding, so a table nobody sweeps
any more (every node gone) does not outlive its registrations.

Each change of the local :class:`Location` is one op ``(kind, aor, binding)``; a batch of
them runs as one Lua script call: "put" stores the binding, "del" removes it, "expire" (a
sweep) removes it only if the stored one has not been refreshed since (two nodes sweeping
the same binding, or a sweep racing a re-registration through another node, do no harm).
The script then PUBLISHes every binding's resulting state in one message
``{o: node, s: [[aor, ruid, row or false, op], ...]}``. ``ul.flush`` is one op: the mirror
unlinks the table's keys and tells the other nodes, which empty their copies.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any

from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.redis_mirror import LinkStats, Op, RedisMirror, ScriptCall

log = logging.getLogger("kamrouter.usrloc")

# One call applies a batch of ops in order (every key of a table is in one cluster slot).
# KEYS[i] the AoR's hash of op i. ARGV: channel, origin, then per op: aor, ruid, op, and the
# row (put) or the expires the sweeper saw (expire). Field 2 of a row is its absolute
# expires in seconds. One PUBLISH carries every op's resulting state: [aor, ruid, row|false,
# op].
_APPLY_OPS = """
local channel, origin = ARGV[1], ARGV[2]
local states = {}
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 4 + 2
  local aor, ruid, op, arg = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  if op == 'put' then
    redis.call('HSET', key, ruid, arg)
  elseif op == 'del' then
    redis.call('HDEL', key, ruid)
  elseif op == 'expire' then
    local stored = redis.call('HGET', key, ruid)
    if stored and cjson.decode(stored)[2] <= tonumber(arg) then redis.call('HDEL', key, ruid) end
  end
  local latest = 0
  for _, row in ipairs(redis.call('HVALS', key)) do
    local expires = cjson.decode(row)[2]
    if expires > latest then latest = expires end
  end
  if latest > 0 then
    redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil(latest * 1000)))
  end
  states[i] = {aor, ruid, redis.call('HGET', key, ruid), op}
end
redis.call('PUBLISH', channel, cjson.encode({o=origin, s=states}))
return 1
"""

#: The type of each field of :meth:`Binding.as_row` (a float field takes an int too).
_ROW_TYPES = (str, float, int, str, int, str, str, str, str, str, int, int, int, int, str, float)


def encode(binding: Binding) -> str:
    return json.dumps(binding.as_row(), separators=(",", ":"))


def decode(text: str) -> Binding:
    """A binding from its stored row; ValueError/TypeError for anything malformed."""
    return decode_row(json.loads(text))


def decode_row(row: Any) -> Binding:
    """A binding from its row (:meth:`Binding.as_row` as a JSON array)."""
    if not isinstance(row, list) or len(row) != len(_ROW_TYPES):
        raise ValueError("not a binding row")
    for value, kind in zip(row, _ROW_TYPES):
        if not isinstance(value, (int, float) if kind is float else kind) or \
                isinstance(value, bool):
            raise TypeError(f"binding field {value!r} is not a {kind.__name__}")
    return Binding.from_row(tuple(row))


class RedisLocation(RedisMirror):
    """The bridge between one :class:`Location` and Redis (one task: :meth:`run`)."""

    script = _APPLY_OPS

    def __init__(self, table: Location, prefix: str, limit: int,
                 connect: Callable[[], AbstractAsyncContextManager[Any]],
                 stats: LinkStats | None = None) -> None:
        super().__init__(f"usrloc {table.name}", prefix, table.name, connect,
                         stats or LinkStats.named("usrloc", table.name), limit)
        self.table = table
        table.on_change = self.enqueue_change
        #: Bindings another worker changed while Redis was away (:meth:`hold`).
        self.held: set[tuple[str, str]] = set()

    def enqueue_change(self, op: str, aor: str, binding: Binding | None) -> None:
        """The table's ``on_change``: queue a local change for Redis."""
        self.enqueue(("flush",) if binding is None else (op, aor, binding))

    def hold(self, key: tuple[str, str]) -> None:
        """Keep binding ``key`` (aor, ruid) as this copy has it through the next re-sync, if
        Redis is away: another worker changed it and sends it once it reconnects, maybe
        after this worker read the table."""
        if not self.connected:
            self.held.add(key)

    def op_key(self, op: Op) -> Hashable:
        return (op[1], op[2].ruid)

    def send_batch(self, call: ScriptCall, ops: list[Op]) -> None:
        keys: list[str] = []
        args = [self.channel, self.node_id]
        for kind, aor, binding in ops:
            keys.append(self.key_prefix + aor)
            args += (aor, binding.ruid, kind,
                     encode(binding) if kind == "put" else repr(binding.expires))
        call(keys, args)

    def states(self, message: dict[str, Any]) -> list[Any]:
        return list(message["s"])

    def state_key(self, state: Any) -> Hashable:
        return (str(state[0]), str(state[1]))

    def apply_state(self, key: Hashable, state: Any, own: bool) -> None:
        if own and state[3] != "expire":
            return  # a put or del leaves what this node already has
        assert isinstance(key, tuple)
        row = state[2]
        self.table.apply(key[0], key[1], decode(row) if row else None)

    def apply_flush(self, keep: dict[Hashable, int]) -> None:
        self.table.replace_all([], keep=list(keep))  # type: ignore[arg-type]

    def reseed_ops(self) -> list[Op]:
        return [("put", aor, binding) for aor, binding in self.table.rows()]

    def copy_size(self) -> int:
        return self.table.count_contacts()

    async def read_all(self, client: Any) -> list[tuple[str, Binding]]:
        names = await self.scan_keys(client)
        rows: list[tuple[str, Binding]] = []
        skip = len(self.key_prefix)
        now = self.table.clock()
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            async with client.pipeline(transaction=False) as pipe:
                replies = [pipe.hgetall(name) for name in chunk]
            for name, reply in zip(chunk, replies):
                for ruid, text in (await reply).items():
                    try:
                        binding = decode(text)
                    except (ValueError, TypeError) as exc:
                        log.warning("%s: skipping the malformed binding %r of %r in Redis "
                                    "(%s)", self.label, ruid, name, exc)
                        continue
                    if binding.expires > now:
                        rows.append((name[skip:], binding))
        return rows

    def replace_all(self, content: Any, keep: list[Hashable]) -> None:
        held, self.held = self.held, set()
        self.table.replace_all(content, keep=[*keep, *held])  # type: ignore[list-item]
