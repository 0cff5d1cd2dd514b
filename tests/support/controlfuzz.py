"""All-byte mutation fuzzing of the control-plane decoders, in process.

Each *target* takes one mutated input and drives one decoder the way its transport does:
the JSON-RPC stream splitter (random chunking), the dispatcher (parse + dispatch against
the real core methods), a Unix stream connection and an HTTP connection over in-memory
streams, the FIFO's document handling, the evapi netstring decoder, evapi's message
handling and the frames of evapi's link between workers (both ends). A target raises only when the code under test let an exception escape that its
transport would not have caught, or when the last-resort guard had to step in.

``tests/rpc/test_fuzz_control.py`` runs a bounded number of cases with a fixed seed in
``make test``; ``benchmarks/fuzz_control.py`` runs them for as long as asked.
"""
from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import pairwise
from types import SimpleNamespace

import trio
import trio.testing

from kamrouter.modules.evapi.config import EvapiConfig
from kamrouter.modules.evapi.framing import FramingError, NetstringDecoder, encode_netstring
from kamrouter.modules.evapi.hub import Hub
from kamrouter.modules.evapi.link import Link, decode
from kamrouter.modules.evapi.remote import RemoteEvapi
from kamrouter.modules.evapi.server import EvapiServer
from kamrouter.net import Endpoint, OwnEndpoints
from kamrouter.rpc.core_methods import register_core_methods
from kamrouter.rpc.dispatch import Dispatcher
from kamrouter.rpc.framing import DocumentTooLarge, JsonSplitter
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.rpc.transports import fifo, http, stream
from kamrouter.rpc.transports.limits import Counters, Limits
from kamrouter.stats import StatsRegistry

SEEDS: list[bytes] = [
    b'{"jsonrpc":"2.0","method":"core.echo","params":[1,"two",{"3":[4.5,null,true]}],"id":1}',
    b'[{"jsonrpc":"2.0","method":"core.uptime","id":"a"},{"jsonrpc":"2.0","method":"x"}]',
    b'{"jsonrpc": "2.0", "method": "stats.fetch", "params": {"selectors": "core:"}, "id": 7}\n'
    b'{"jsonrpc":"2.0","method":"system.methodHelp","params":["core.echo"],"id":null}',
    b'{"jsonrpc":"2.0","method":"core.echo","params":["\\u00e9\\ud83d\\ude00\\\\\\""],"id":2}',
    b'{"tindex":1,"tlabel":2,"routing":"serial","routes":[{"uri":"sip:a@127.0.0.1"}]}',
]
#: Fragments worth splicing in: structure, escapes, long numbers, deep nesting.
TOKENS = [b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u", b"\\ud800", b":", b",", b"\n", b"\x00",
          b"\xff", b"\xc3", b"9" * 80, b"-0.0e999", b"NaN", b"[" * 100, b"]" * 100, b"{\"a\":",
          b"null", b"true", b"\xed\xa0\x80", b"1e400"]

#: Frames of evapi's link (inside their netstring), each op once.
LINK_SEEDS: list[bytes] = [
    b'{"op":"send","tag":null,"first":false}\n{"event":"x"}',
    b'{"op":"request","id":"1:2","tag":"routing"}\n{"id":"1:2"}',
    b'{"op":"forget","id":"1:2"}\n',
    b'{"op":"clients","tags":["a",""],"address":["127.0.0.1",8448]}\n',
    b'{"op":"reply","id":"3:4"}\n{"id":"3:4","routes":[]}',
    b'{"op":"failed","id":"3:4","why":"no evapi client connected"}\n',
]

Target = Callable[[bytes], Awaitable[None]]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1-8 random edits of ``data``: bytes set to any value, inserted, deleted, duplicated,
    or tokens spliced in."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        at = rng.randint(0, len(buf))
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 2 and buf:
            del buf[at:at + rng.randint(1, 8)]
        elif op == 3 and buf:
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start:start + rng.randint(1, 16)]
        else:
            buf[at:at] = rng.choice(TOKENS)
    return bytes(buf)


def cases(seed: int) -> Callable[[], bytes]:
    rng = random.Random(seed)
    return lambda: mutate(rng, rng.choice(SEEDS))


class Harness:
    """The real dispatcher, core methods, transports' handlers and evapi server, wired to a
    stand-in router; :meth:`check` fails if the guard counted anything."""

    def __init__(self) -> None:
        self.stats = StatsRegistry()
        registry = MethodRegistry()
        router = SimpleNamespace(stats=self.stats, started_at=time.time(),
                                 sockets=[Endpoint("udp", "127.0.0.1", 5060)], settings=None)
        register_core_methods(registry, router)
        # Methods that change the process are not fuzz targets.
        for name in ("corex.debug", "stats.reset_statistics", "stats.clear_statistics"):
            registry._methods.pop(name, None)  # noqa: SLF001 - a test harness
        self.dispatcher = Dispatcher(registry)
        self.limits = Limits(1 << 16, 0.5, 0.5, trio.CapacityLimiter(8),
                             trio.CapacityLimiter(8))
        self.counters = Counters.register(self.stats, logging.getLogger("kamrouter.rpc"))
        self.http_server = http._Server(self.dispatcher, None, self.limits, self.counters, None)
        self.fifo_dir = tempfile.mkdtemp(prefix="kfuzz-")
        self.evapi = EvapiServer(EvapiConfig(), stats=self.stats, emit=lambda *a, **k: None)
        self.evapi_client = SimpleNamespace(conidx=0, host="127.0.0.1", port=1, tag="")
        self.hub = Hub(self.evapi, "/nonexistent/evapi.sock", self.stats)
        self.remote = RemoteEvapi("/nonexistent/evapi.sock", EvapiConfig(), self.stats,
                                  OwnEndpoints())
        self.link = Link(None, lambda header, body: None, self.hub.malformed)  # type: ignore[arg-type]

    def check(self) -> None:
        for group in ("rpc", "evapi"):
            dropped = self.stats.get(group, "drops_internal_error")
            assert dropped is None or dropped.value == 0, f"{group}: the guard caught a failure"

    # -- targets ---------------------------------------------------------------------------
    async def splitter(self, data: bytes) -> None:
        rng = random.Random(data)
        splitter = JsonSplitter(4096)
        for document in _chunks(rng, data):
            try:
                splitter.feed(document)
            except DocumentTooLarge:
                splitter = JsonSplitter(4096)
        splitter.finish()

    async def dispatch(self, data: bytes) -> None:
        reply = await self.dispatcher.handle(data)
        if reply is not None:
            json.loads(reply)  # every reply is JSON

    async def stream_connection(self, data: bytes) -> None:
        client, server = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(stream.serve_connection, server,
                                             dispatcher=self.dispatcher, limits=self.limits,
                                             counters=self.counters))
            await client.send_all(data)
            await client.send_eof()
            with trio.fail_after(5):
                while await client.receive_some(65536):
                    pass
        self.check()

    async def http_connection(self, data: bytes) -> None:
        request = (b"POST /RPC HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data)
                   + data)
        rng = random.Random(data)
        if rng.random() < 0.3:
            request = mutate(rng, request)
        client, server = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(http._serve_connection, server,
                                             server=self.http_server))
            await client.send_all(request)
            await client.send_eof()
            with trio.fail_after(5):
                while await client.receive_some(65536):
                    pass
        self.check()

    async def fifo_document(self, data: bytes) -> None:
        await fifo._answer(data, self.fifo_dir, self.dispatcher, self.limits, self.counters)
        self.check()

    async def netstrings(self, data: bytes) -> None:
        rng = random.Random(data)
        framed = mutate(rng, encode_netstring(data) + encode_netstring(data[::-1]))
        decoder = NetstringDecoder(4096)
        try:
            for chunk in _chunks(rng, framed):
                decoder.feed(chunk)
        except FramingError:
            pass

    async def evapi_message(self, data: bytes) -> None:
        self.evapi._receive(self.evapi_client, data)  # noqa: SLF001 - the message handler
        self.check()

    async def evapi_link(self, data: bytes) -> None:
        """A mutated frame to worker 0's end and to another worker's, as a Link hands it."""
        rng = random.Random(data)
        frame = mutate(rng, rng.choice(LINK_SEEDS))
        for handle in (partial(self.hub._on_frame, self.link),  # noqa: SLF001
                       self.remote._on_frame):  # noqa: SLF001 - the frame handlers
            try:
                handle(*decode(frame))
            except (ValueError, KeyError, TypeError):  # what a Link counts and drops
                pass

    def targets(self) -> dict[str, Target]:
        return {"splitter": self.splitter, "dispatch": self.dispatch,
                "stream": self.stream_connection, "http": self.http_connection,
                "fifo": self.fifo_document, "netstring": self.netstrings,
                "evapi": self.evapi_message, "evapi_link": self.evapi_link}


def _chunks(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 4))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds) if b > a]
