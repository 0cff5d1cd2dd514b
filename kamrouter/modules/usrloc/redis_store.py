"""A location table shared through Redis (the generic half: :mod:`kamrouter.redis_mirror`).

Layout: one Redis hash per AoR, ``{<prefix>:<table>}:<aor>``, field = the binding's ruid,
value = the binding as a compact JSON array (:meth:`Binding.as_row`, ``expires`` as absolute
Unix time). The hash expires (PEXPIREAT) with its latest binding, so a table nobody sweeps
any more (every node gone) does not outlive its registrations.

Each change of the local :class:`Location` is one op ``(kind, aor, binding)`` run as one Lua
script: "put" stores the binding, "del" removes it, "expire" (a sweep) removes it only if
the stored one has not been refreshed since (two nodes sweeping the same binding, or a sweep
racing a re-registration through another node, do no harm). The script then PUBLISHes the
binding's resulting state ``{o: node, a: aor, r: ruid, b: row}`` (no ``b``: gone).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any

from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.redis_mirror import LinkStats, Op, RedisMirror

log = logging.getLogger("kamrouter.usrloc")

# KEYS[1] the AoR's hash. ARGV: channel, origin, aor, ruid, op, row (put) or the expires the
# sweeper saw (expire). Field 2 of a row is its absolute expires in seconds.
_APPLY_OP = """
local key, channel, origin, aor, ruid, op, arg = KEYS[1], ARGV[1], ARGV[2], ARGV[3],
  ARGV[4], ARGV[5], ARGV[6]
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
local value = redis.call('HGET', key, ruid)
if value then
  redis.call('PUBLISH', channel, cjson.encode({o=origin, a=aor, r=ruid, b=value}))
else
  redis.call('PUBLISH', channel, cjson.encode({o=origin, a=aor, r=ruid}))
end
return 1
"""

#: The type of each field of :meth:`Binding.as_row` (a float field takes an int too).
_ROW_TYPES = (str, float, int, str, int, str, str, str, str, str, int, int, int, int, str, float)


def encode(binding: Binding) -> str:
    return json.dumps(binding.as_row(), separators=(",", ":"))


def decode(text: str) -> Binding:
    """A binding from its stored row; ValueError/TypeError for anything malformed."""
    row = json.loads(text)
    if not isinstance(row, list) or len(row) != len(_ROW_TYPES):
        raise ValueError("not a binding row")
    for value, kind in zip(row, _ROW_TYPES):
        if not isinstance(value, (int, float) if kind is float else kind) or \
                isinstance(value, bool):
            raise TypeError(f"binding field {value!r} is not a {kind.__name__}")
    return Binding.from_row(tuple(row))


class RedisLocation(RedisMirror):
    """The bridge between one :class:`Location` and Redis (one task: :meth:`run`)."""

    script = _APPLY_OP

    def __init__(self, table: Location, prefix: str, limit: int,
                 connect: Callable[[], AbstractAsyncContextManager[Any]],
                 stats: LinkStats | None = None) -> None:
        super().__init__(f"usrloc {table.name}", prefix, table.name, connect,
                         stats or LinkStats.named("usrloc", table.name), limit)
        self.table = table
        table.on_change = lambda op, aor, binding: self.enqueue((op, aor, binding))

    def op_key(self, op: Op) -> Hashable:
        return (op[1], op[2].ruid)

    def send_op(self, script: Any, pipe: Any, op: Op) -> None:
        kind, aor, binding = op
        arg = encode(binding) if kind == "put" else repr(binding.expires)
        script(keys=[self.key_prefix + aor],
               args=[self.channel, self.node_id, aor, binding.ruid, kind, arg], client=pipe)

    def message_key(self, message: dict[str, Any]) -> Hashable:
        return (str(message["a"]), str(message["r"]))

    def apply_message(self, key: Hashable, message: dict[str, Any]) -> None:
        assert isinstance(key, tuple)
        row = message.get("b")
        self.table.apply(key[0], key[1], None if row is None else decode(row))

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
        self.table.replace_all(content, keep=keep)  # type: ignore[arg-type]
