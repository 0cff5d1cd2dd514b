"""One htable kept in Redis (the generic half: :mod:`kamrouter.redis_mirror`).

Layout: one Redis string per item, ``{<prefix>:<table>}:<key>``, holding the integer's
decimal text or ``s:`` + the string, with the item's expiry as the key's TTL. Each op of
the table (:data:`~.table.Op`) runs as one Lua script that applies Kamailio's expiry rules
atomically and PUBLISHes the item's resulting state ``{o: node, k: key, v: value, t: ttl}``.
``htable.flush`` keeps the epoch key; ``redis_data_loss`` is the mirror's ``on_data_loss``.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any

from kamrouter.modules.htable.config import TableConfig
from kamrouter.modules.htable.table import Op, Row, Table, Value
from kamrouter.redis_mirror import LinkStats, RedisMirror, ScriptCall

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


class RedisLink(RedisMirror):
    """The bridge between one :class:`Table` and Redis (one task: :meth:`run`)."""

    script = _APPLY_OP

    def __init__(self, table: Table, config: TableConfig,
                 connect: Callable[[], AbstractAsyncContextManager[Any]],
                 stats: LinkStats | None = None) -> None:
        super().__init__(f"htable {config.name}", config.redis_prefix, config.name, connect,
                         stats or LinkStats.named("htable", config.name), config.redis_queue,
                         config.redis_data_loss)
        self.table = table
        self._rules = (str(config.autoexpire * 1000), "1" if config.updateexpire else "0",
                       "" if config.initval is None else str(config.initval))
        table.on_write = self.enqueue

    def op_key(self, op: Op) -> Hashable:
        return op[1]

    def send_batch(self, call: ScriptCall, ops: list[Op]) -> None:
        for kind, key, *rest in ops:  # one script call per op
            arg, explicit = "", ""
            if kind == "set":
                arg = encode(rest[0])
                explicit = "" if rest[1] is None else str(int(rest[1] * 1000))
            elif kind in ("inc", "expire"):
                arg = str(rest[0]) if kind == "inc" else str(int(rest[0] * 1000))
            call([self.key_prefix + key],
                 [self.channel, self.node_id, key, kind, *self._rules, arg, explicit])

    def states(self, message: dict[str, Any]) -> list[Any]:
        return [message]  # one item per message

    def state_key(self, state: Any) -> Hashable:
        return str(state["k"])

    def apply_state(self, key: Hashable, state: Any, own: bool) -> None:
        assert isinstance(key, str)
        value = state.get("v")
        if value is None:
            self.table.apply_delete(key)
        else:
            ttl = state["t"]
            self.table.apply(key, decode(value), ttl / 1000 if ttl >= 0 else None)

    def apply_flush(self, keep: dict[Hashable, int]) -> None:
        self.table.apply_flush(keep=[k for k in keep if isinstance(k, str)])

    def reseed_ops(self) -> list[Op]:
        # An explicit expiry of 0 means none; a tiny remainder must not become none.
        return [("set", key, value, 0 if left is None else max(left, 0.001))
                for key, value, left in self.table.rows()]

    def copy_size(self) -> int:
        return len(self.table)

    async def read_all(self, client: Any) -> list[Row]:
        names = await self.scan_keys(client)
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

    def replace_all(self, content: Any, keep: list[Hashable]) -> None:
        self.table.replace_all(content, keep=[k for k in keep if isinstance(k, str)])
