"""The whole proxy pipeline in one process: a routing script from text, a fake clock, sends
recorded instead of sent, no sockets and no sleeps.

It wires :class:`kamrouter.pipeline.proxy.Proxy` the way the router does, with stand-ins for
the I/O: a ``Wire`` that records (bytes, destination), a resolver that knows a fixed table of
names, and ``spawn`` given by the test (a trio nursery's ``start_soon`` when a test has
``async`` hooks or DNS lookups; refused otherwise)::

    pipe = Pipeline(tmp_path, "def request_route(msg):\\n    tm.relay(msg)\\n")
    pipe.receive(INVITE, CALLER)
    (invite, dest), = pipe.take()
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kamrouter.net import Endpoint
from kamrouter.pipeline.addressing import Identity, NextHop
from kamrouter.pipeline.handoff import HandoffPort, branch_mark
from kamrouter.pipeline.proxy import Proxy
from kamrouter.script.builtins import builtin_apis
from kamrouter.script.loader import load_script, set_apis
from kamrouter.sip import HeaderLimits, Request, Response, parse
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler
from kamrouter.tm import TmParams, Transaction, TransactionLayer

from .doubles import FakeClock

PROXY = Endpoint("udp", "127.0.0.1", 5060)
HEADER = "from kamrouter.script import core, maxfwd, rr, sl, tm\n"


class Wire:
    """The transports' side the pipeline uses: ``send`` records, ``local_for`` picks the
    listening socket of the destination's transport."""

    def __init__(self, sockets: list[Endpoint]) -> None:
        self.sockets = sockets
        self.sent: list[tuple[bytes, Endpoint]] = []
        self.refused: list[Endpoint] = []
        #: RFC 5923 Via aliases the pipeline asked for: alias -> the connection's peer.
        self.aliases: dict[Endpoint, Endpoint] = {}

    def send(self, data: bytes, dest: Endpoint, local: Endpoint | None,
             on_error: Callable[[], None] | None) -> None:
        self.sent.append((data, dest))

    def refuses(self, dest: Endpoint) -> bool:
        """Nothing is sent to the pipeline's own sockets (as the router's transports)."""
        if dest in self.sockets:
            self.refused.append(dest)
            return True
        return False

    def alias(self, alias: Endpoint, remote: Endpoint) -> None:
        self.aliases[alias] = remote

    def local_for(self, dest: Endpoint, socket: str | None = None) -> Endpoint | None:
        for sock in self.sockets:
            if sock.proto == dest.proto and (socket is None or str(sock) == socket):
                return sock
        return None


class Names:
    """A resolver with a fixed table: IP literals and these names are known at once; a
    name in ``slow`` is answered only through ``resolve`` (a task), like a DNS lookup."""

    def __init__(self, table: dict[str, str] | None = None, slow: set[str] | None = None):
        self.table = table or {}
        self.slow = slow or set()

    def cached(self, host: str) -> tuple[bool, str | None]:
        if host in self.slow:
            return False, None
        if host[:1].isdigit() or ":" in host:
            return True, host
        return (True, self.table[host]) if host in self.table else (True, None)

    async def resolve(self, host: str) -> str | None:
        return self.table.get(host)


class NameTargets:
    """The pipeline's RFC 3263 destinations over :class:`Names`: one target per name (the
    name's address, the hop's transport and port), or the targets ``several`` lists for it
    (like SRV records); no name resolves to nothing."""

    def __init__(self, names: Names, several: dict[str, list[Endpoint]] | None = None) -> None:
        self.names = names
        self.several = several or {}

    def cached(self, hop: NextHop) -> list[Endpoint] | None:
        if hop.host in self.several:
            return list(self.several[hop.host])
        known, address = self.names.cached(hop.host)
        if not known:
            return None
        return [Endpoint(hop.proto, address, hop.port)] if address else []

    async def resolve(self, hop: NextHop) -> list[Endpoint]:
        address = await self.names.resolve(hop.host)
        return [Endpoint(hop.proto, address, hop.port)] if address else []


class Blocked:
    """Records what the pipeline would put on the destination blocklist."""

    def __init__(self) -> None:
        self.added: list[tuple[Endpoint, str]] = []

    def add(self, dest: Endpoint, reason: str, expire: float | None = None) -> None:
        self.added.append((dest, reason))


def _refuse_tasks(func: Callable[..., Any], *args: Any) -> None:
    raise AssertionError(f"the pipeline started a task ({func.__name__}) in a test that "
                         "gave it no nursery")


class Pipeline:
    """A proxy pipeline running ``script`` (the built-in APIs are imported for it)."""

    def __init__(self, tmp_path: Path, script: str, *,
                 spawn: Callable[..., None] = _refuse_tasks, names: Names | None = None,
                 sockets: tuple[Endpoint, ...] = (PROXY,), max_forwards: int = 70,
                 targets: dict[str, list[Endpoint]] | None = None, failover_max: int = 0,
                 handoff: HandoffPort | None = None, **tm_params: Any) -> None:
        """``handoff``: run as that worker process (its index in the branch ids)."""
        self.clock = FakeClock()
        self.scheduler = Scheduler(self.clock)
        self.stats = StatsRegistry()
        self.wire = Wire(list(sockets))
        self.terminated: list[Transaction] = []
        path = tmp_path / "routes.py"
        path.write_text(HEADER + script)
        names = names or Names()
        self.blocked = Blocked()
        self.proxy = Proxy(
            transports=self.wire, resolver=names, destinations=NameTargets(names, targets),
            blocklist=self.blocked, failover_max=failover_max, blocklist_503=False, spawn=spawn,
            script=lambda: self.script, stats=self.stats,
            tm_factory=lambda hooks: TransactionLayer(
                TmParams(**tm_params), self.scheduler, self.wire.send, hooks, self.stats,
                branch_mark(handoff.index) if handoff is not None else ""),
            on_terminated=self.terminated.append, identity=Identity(list(sockets), []),
            max_message_size=65535, limits=HeaderLimits(), max_forwards=max_forwards,
            slow_hook_ms=0, stray_reply_checks=[], handoff=handoff)
        set_apis(builtin_apis(self.proxy))
        self.script = load_script(path)

    @property
    def local(self) -> Endpoint:
        return self.wire.sockets[0]

    def receive(self, data: bytes | str, source: Endpoint, local: Endpoint | None = None,
                origin: int | None = None) -> None:
        """``data`` arrives from ``source`` on ``local`` (default: the first socket; CRLF
        line ends added); ``origin``: passed on by that worker."""
        if isinstance(data, str):
            head, _, body = data.partition("\n\n")
            data = (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()
        self.proxy.on_message(data, source, local or self.local, origin)

    def take(self) -> list[tuple[Request | Response, Endpoint]]:
        """What was sent since the last call, parsed, with its destination."""
        sent = [(parse(data), dest) for data, dest in self.wire.sent]
        self.wire.sent.clear()
        return sent

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer due on the way, in order."""
        end = self.clock.now + seconds
        while (deadline := self.scheduler.next_deadline()) is not None and deadline <= end:
            self.clock.now = deadline
            self.scheduler.fire_due(deadline)
        self.clock.now = end

    def stat(self, selector: str) -> int | float:
        (found,) = self.stats.select(selector)
        return found.value
