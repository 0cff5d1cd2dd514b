"""The state bus of worker processes: what a routing script or an RPC method changes in one
worker's memory (htable items, usrloc bindings, pike bans) is applied in every other one.

Each worker binds a Unix datagram socket ``bus-N.sock`` in the run directory (0700: only
the router's user can reach it). A module registers a :class:`Channel` by name and
:meth:`StateBus.publish`\\ es each local change as one small JSON value; a receiver applies
it through the channel without publishing it again. What a message means and how
conflicts resolve is the channel's business (each module documents its rule, mostly the
last writer per key wins); the bus only carries them, in order per sender.

Sending: a change is encoded once and queued for every other worker; one task per peer
packs what queued into datagrams of at most :data:`MAX_DATAGRAM` bytes, ``{"o": sender,
"p": its pid, "n": seq of the first message, "m": [messages]}``, and sends them on a
socket connected to that peer, waiting while the peer's queue is full (Linux keeps ten
datagrams per Unix socket, ``net.unix.max_dgram_qlen``). A peer that is down (being
restarted) loses what was meant for it and loads a dump instead; more than
:data:`MAX_QUEUE_BYTES` waiting for one peer drop the newest (``bus:dropped_queue``).

Receiving: a datagram over the bound, not JSON or not of that shape is dropped and counted
(``bus:dropped_malformed``), as is a message its channel cannot apply; nothing a datagram
holds can raise out of the receive loop. Each sender numbers its messages (per process,
``p``): a gap is counted in ``bus:lost``.

Start: a worker binds its socket first (messages queue there), then asks the other workers
in turn for a dump over their control sockets (``bus.dump``: every channel's content and
the last message it applied from each sender), loads the first it gets, and applies the
queued messages the dump does not already hold. Worker 0's RPC reads (``htable.dump``,
``ul.dump``) thus answer for the whole router.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import trio

from kamrouter.boundedjson import JsonLimitError, loads
from kamrouter.rpc.registry import MethodRegistry, RpcError
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.bus")

#: Largest datagram sent or accepted; a single change bigger than this is not published
#: (``bus:dropped_too_large``, logged): it stays in its worker.
MAX_DATAGRAM = 65536
#: Bytes of messages waiting for one peer at most (a peer that stopped reading).
MAX_QUEUE_BYTES = 16 << 20
#: The RPC method that answers a starting worker.
DUMP_METHOD = "bus.dump"
_HEADER_ROOM = 96  # bytes of the datagram's envelope around its messages
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per write


class Channel(Protocol):
    """What a module puts on the bus."""

    def apply(self, payload: Any) -> None:
        """Apply another worker's change; raise ValueError/TypeError/KeyError if malformed."""

    def dump(self) -> Any:
        """The whole content, JSON-serialisable, for a starting worker."""

    def load(self, data: Any) -> None:
        """Replace the content with another worker's dump."""


@contextmanager
def _removed_at_exit(path: str) -> Iterator[None]:
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


def bus_socket_name(index: int) -> str:
    return f"bus-{index}.sock"


class _Peer:
    def __init__(self, index: int, path: str) -> None:
        self.index = index
        self.path = path
        self.queue: deque[tuple[int, bytes]] = deque()
        self.queued_bytes = 0
        self.wake = trio.Event()
        self.sock: trio.socket.SocketType | None = None


class StateBus:
    def __init__(self, index: int, count: int, run_dir: str, stats: StatsRegistry,
                 ask_worker: Callable[[int, str, list[Any]], Awaitable[Any]]) -> None:
        self.index = index
        self.pid = os.getpid()
        self.path = os.path.join(run_dir, bus_socket_name(index))
        self.peers = [_Peer(i, os.path.join(run_dir, bus_socket_name(i)))
                      for i in range(count) if i != index]
        self.channels: dict[str, Channel] = {}
        self._ask_worker = ask_worker
        self.seq = 0
        #: sender index → (its pid, the last seq applied from it)
        self.applied: dict[int, tuple[int, int]] = {}
        self.sent = stats.counter("bus", "sent_messages")
        self.datagrams = stats.counter("bus", "sent_datagrams")
        self.received = stats.counter("bus", "received_messages")
        self.malformed = stats.counter("bus", "dropped_malformed")
        self.too_large = stats.counter("bus", "dropped_too_large")
        self.dropped_queue = stats.counter("bus", "dropped_queue")
        self.unreachable = stats.counter("bus", "dropped_unreachable")
        self.lost = stats.counter("bus", "lost")
        self._logged_malformed = False

    def register(self, name: str, channel: Channel) -> None:
        self.channels[name] = channel

    def register_rpc(self, registry: MethodRegistry) -> None:
        registry.register(DUMP_METHOD, self.dump)

    def stamp(self, previous: int = 0) -> int:
        """A version for a local write, above ``previous``: the system-wide monotonic clock
        in ns, the worker index in the low 8 bits (ties between workers: the higher wins)."""
        return max(previous + 1, (time.monotonic_ns() << 8) | (self.index & 0xFF))

    # -- sending ----------------------------------------------------------------------------
    def publish(self, channel: str, payload: Any) -> None:
        """Queue one change for every other worker (synchronous: the caller never waits)."""
        data = _encode([channel, payload]).encode()
        if len(data) > MAX_DATAGRAM - _HEADER_ROOM:
            if not self.too_large.value:  # once: a script may do it on every call
                log.warning("bus: a %s change of %d bytes is over %d and stays in this "
                            "worker; counted in bus:dropped_too_large", channel, len(data),
                            MAX_DATAGRAM - _HEADER_ROOM)
            self.too_large.value += 1
            return
        self.seq += 1
        self.sent.value += 1
        for peer in self.peers:
            if peer.queued_bytes + len(data) > MAX_QUEUE_BYTES:
                self.dropped_queue.value += 1
                continue
            peer.queue.append((self.seq, data))
            peer.queued_bytes += len(data)
            peer.wake.set()

    def _pack(self, peer: _Peer) -> tuple[bytes, int]:
        """The next datagram for ``peer`` (consecutive messages only) and how many it holds."""
        queue = peer.queue
        first, data = queue[0]
        parts, size = [data], len(data) + _HEADER_ROOM
        for seq, data in queue:
            if seq == first:
                continue
            if seq != first + len(parts) or size + len(data) + 1 > MAX_DATAGRAM:
                break
            parts.append(data)
            size += len(data) + 1
        head = f'{{"o":{self.index},"p":{self.pid},"n":{first},"m":['.encode()
        return head + b",".join(parts) + b"]}", len(parts)

    async def _send_to(self, peer: _Peer) -> None:
        while True:
            if not peer.queue:
                peer.wake = trio.Event()
                await peer.wake.wait()
            datagram, count = self._pack(peer)
            try:
                try:
                    await self._send(peer, datagram)
                except OSError:
                    # Connected to a predecessor of the peer that is gone: a restarted
                    # peer has a new socket at the same path.
                    await self._send(peer, datagram)
            except OSError as exc:
                # The peer is down: what queued for it is lost; it loads a dump at start.
                self.unreachable.value += len(peer.queue)
                peer.queue.clear()
                peer.queued_bytes = 0
                if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                    log.warning("bus: cannot send to worker %d: %s", peer.index, exc)
                continue
            self.datagrams.value += 1
            for _ in range(count):
                peer.queued_bytes -= len(peer.queue.popleft()[1])

    async def _send(self, peer: _Peer, datagram: bytes) -> None:
        try:
            if peer.sock is None:
                peer.sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
                await peer.sock.connect(peer.path)
            await peer.sock.send(datagram)
        except OSError:
            if peer.sock is not None:
                peer.sock.close()
                peer.sock = None
            raise

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, datagram: bytes) -> None:
        """Apply one datagram from another worker; anything malformed is counted, dropped."""
        try:
            if len(datagram) > MAX_DATAGRAM:
                raise ValueError(f"{len(datagram)} bytes")
            envelope = loads(datagram)
            origin, pid, first, messages = (envelope["o"], envelope["p"], envelope["n"],
                                            envelope["m"])
            if not (type(origin) is int and type(pid) is int and type(first) is int
                    and isinstance(messages, list)) or origin == self.index \
                    or not 0 <= origin <= len(self.peers):
                raise ValueError("not a bus datagram")
        except (ValueError, KeyError, TypeError, JsonLimitError) as exc:
            self._drop(f"datagram of {len(datagram)} bytes", exc)
            return
        known_pid, last = self.applied.get(origin, (pid, 0))
        if known_pid != pid:  # the sender was restarted: it counts from 1 again
            last = 0
        for seq, message in enumerate(messages, first):
            if seq <= last:
                continue  # the dump this worker loaded holds it already
            if last and seq > last + 1:
                self.lost.value += seq - last - 1
            last = seq
            self.received.value += 1
            try:
                name, payload = message
                self.channels[name].apply(payload)
            except Exception as exc:  # noqa: BLE001 - a bad message costs itself only
                self._drop(f"message from worker {origin}", exc)
        self.applied[origin] = (pid, last)

    def _drop(self, what: str, exc: BaseException) -> None:
        self.malformed.value += 1
        if not self._logged_malformed:  # once: a flood of garbage must not fill the log
            self._logged_malformed = True
            log.warning("bus: dropped a malformed %s (%s: %s); counted in "
                        "bus:dropped_malformed", what, type(exc).__name__, exc)

    # -- start-up and dumps -----------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Every channel's content and the last message applied from each worker (for a
        starting worker; internal)."""
        applied = {str(i): list(state) for i, state in self.applied.items()}
        applied[str(self.index)] = [self.pid, self.seq]
        return {"applied": applied,
                "channels": {name: channel.dump() for name, channel in self.channels.items()}}

    def load(self, dump: dict[str, Any]) -> None:
        for name, data in dump["channels"].items():
            if name in self.channels:
                self.channels[name].load(data)
        self.applied = {int(i): (int(pid), int(seq)) for i, (pid, seq)
                        in dump["applied"].items()}

    async def _fetch_dump(self) -> None:
        for peer in self.peers:
            try:
                dump = await self._ask_worker(peer.index, DUMP_METHOD, [])
            except RpcError:
                continue  # not running (yet): ask the next
            try:
                self.load(dump)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("bus: unusable dump from worker %d (%s)", peer.index, exc)
                continue
            log.info("bus: loaded the shared state from worker %d", peer.index)
            return
        log.info("bus: no other worker answered; starting from the config")

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, load a dump from another worker, then send and receive until cancelled."""
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
        with suppress(FileNotFoundError):  # left by a predecessor that was killed
            os.unlink(self.path)
        await sock.bind(self.path)
        with sock, _removed_at_exit(self.path):
            await self._fetch_dump()
            async with trio.open_nursery() as nursery:
                for peer in self.peers:
                    nursery.start_soon(self._send_to, peer)
                task_status.started()
                while True:
                    try:
                        datagram = await sock.recv(MAX_DATAGRAM + 1)
                    except OSError as exc:  # not expected of a bound datagram socket
                        log.warning("bus: receive failed: %s", exc)
                        await trio.sleep(0.1)
                        continue
                    self.receive(datagram)
