"""The evapi link between worker processes (``[core] workers`` above 1): a Unix stream
connection from each worker to worker 0, which holds the evapi clients.

One frame is a netstring holding a JSON object (``"op"`` names what it is) and, after the
first newline, a body of raw bytes (an event, a client's message)::

    <len>:{"op": "send", "tag": null, "first": false}\\n<event bytes>,

A stream rather than the state bus or the SIP hand-off datagrams: what goes over it is
addressed to one worker (a relay to worker 0, an answer to the worker whose transaction
waits), must stay in order (the client list, then the relays it allows), and either end
learns at once that the other is gone (the connection ends), which fails the requests
waiting across it. The socket sits in the run directory (0700); still, whatever arrives is
bounded (:data:`MAX_FRAME`), checked and counted (``evapi:link_dropped_malformed``), never
raised out of the connection's handler.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import trio

from kamrouter import boundedjson
from kamrouter.modules.evapi.framing import FramingError, NetstringDecoder, encode_netstring
from kamrouter.stats import Counter

log = logging.getLogger("kamrouter.evapi")

#: The socket's name in the run directory.
SOCKET_NAME = "evapi.sock"
#: Largest body passed between workers (an event, a client's message); a bigger event is
#: not relayed from a worker other than 0 (counted in ``evapi:dropped``).
MAX_BODY = 1 << 20
#: Largest JSON header of a frame.
MAX_HEADER = 4096
#: Frames queued on one link before further ones are refused (the caller counts a drop).
QUEUE_FRAMES = 8192
#: Queued frames are written together up to this many bytes.
BATCH_BYTES = 65536

#: ``on_frame(header, body)``; raises ValueError/KeyError/TypeError for a malformed frame.
OnFrame = Callable[[dict[str, Any], bytes], None]
_encode = json.JSONEncoder(separators=(",", ":")).encode


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    return encode_netstring(_encode(header).encode() + b"\n" + body)


def decode(frame: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, body) of one frame; ValueError when it is not one."""
    end = frame.find(b"\n", 0, MAX_HEADER + 1)
    if end < 0:
        raise ValueError("no header line")
    header = boundedjson.loads(frame[:end])
    if not isinstance(header, dict) or not isinstance(header.get("op"), str):
        raise ValueError("the header is not an object with an op")
    return header, frame[end + 1:]


def text(header: dict[str, Any], key: str) -> str:
    """``header[key]``, a string; ValueError when it is not one."""
    value = header.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not a string")
    return value


def optional_text(header: dict[str, Any], key: str) -> str | None:
    """``header[key]``, a string or absent (None); ValueError when it is something else."""
    return None if header.get(key) is None else text(header, key)


class Link:
    """One end of a link: a bounded queue drained by a writer task, and a reader that hands
    every well-formed frame to ``on_frame``."""

    def __init__(self, stream: trio.SocketStream, on_frame: OnFrame, malformed: Counter
                 ) -> None:
        self.stream = stream
        self.on_frame = on_frame
        self.malformed = malformed
        self._outbox, self._inbox = trio.open_memory_channel[bytes](QUEUE_FRAMES)

    def send(self, header: dict[str, Any], body: bytes = b"") -> bool:
        """Queue one frame (never waits); False when it is too big, the queue is full or the
        link is closed."""
        if len(body) > MAX_BODY:
            return False
        try:
            self._outbox.send_nowait(encode(header, body))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def run(self) -> None:
        """Read and write until either end closes or breaks the connection (or sends a
        frame that cannot be framed); returns then, raises only for a bug."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, nursery.cancel_scope)
                await self._read()
                nursery.cancel_scope.cancel()
        finally:
            self._outbox.close()

    async def _write(self, link: trio.CancelScope) -> None:
        try:
            async for frame in self._inbox:
                frames, size = [frame], len(frame)
                while size < BATCH_BYTES:
                    try:
                        frames.append(self._inbox.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    size += len(frames[-1])
                await self.stream.send_all(b"".join(frames))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("evapi link: write failed: %s", exc)
        link.cancel()

    async def _read(self) -> None:
        decoder = NetstringDecoder(MAX_HEADER + 1 + MAX_BODY)
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.debug("evapi link: read failed: %s", exc)
                return
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except FramingError as exc:
                self._drop(exc)
                return
            for frame in frames:
                try:
                    header, body = decode(frame)
                    self.on_frame(header, body)
                except (ValueError, KeyError, TypeError) as exc:
                    self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        self.malformed.value += 1
        if self.malformed.value == 1:  # once: a flood must not fill the log
            log.warning("evapi link: dropped a malformed frame (%s: %s); counted in "
                        "evapi:link_dropped_malformed", type(exc).__name__, exc)
