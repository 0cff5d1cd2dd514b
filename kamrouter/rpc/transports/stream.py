"""Unix stream socket transport: the default control socket.

A connection carries any number of requests, one JSON document each (compact one-liners,
pretty-printed documents or several back to back; see :mod:`kamrouter.rpc.framing`), and gets
one reply line (compact JSON + ``\\n``) per request that needs one, in order. Replies have no
size limit. A client may also write its request and shut down its sending side
(``echo '{...}' | socat - UNIX-CONNECT:path``): the reply still arrives.
"""
from __future__ import annotations

import logging
import socket
import struct
from functools import partial

import trio

from kamrouter.rpc.dispatch import (
    ERROR_INTERNAL_ERROR,
    ERROR_INVALID_REQUEST,
    ERROR_SERVER_ERROR,
    Dispatcher,
    error_reply,
)
from kamrouter.rpc.framing import DocumentTooLarge, JsonSplitter
from kamrouter.rpc.transports.limits import RECEIVE_SIZE, Counters, Limits
from kamrouter.rpc.transports.socketfile import (
    Ownership,
    bind_unix,
    clear_stale_socket,
    remove_if_ours,
)

log = logging.getLogger("kamrouter.rpc")


async def serve_stream(path: str, dispatcher: Dispatcher, limits: Limits, ownership: Ownership,
                       counters: Counters, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on the Unix stream socket ``path`` until cancelled, then remove it."""
    clear_stale_socket(path, socket.SOCK_STREAM, "rpc.stream_socket")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    inode = await bind_unix(sock, path, "rpc.stream_socket", ownership)
    try:
        sock.listen(128)
        handler = partial(serve_connection, dispatcher=dispatcher, limits=limits,
                          counters=counters)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, [trio.SocketListener(sock)])
            task_status.started()
    finally:
        remove_if_ours(path, inode)


async def serve_connection(stream: trio.abc.Stream, *, dispatcher: Dispatcher,
                           limits: Limits, counters: Counters) -> None:
    """Answer the requests of one client connection until it closes or idles out.

    Whatever escapes the exchange (a bug) is answered with an Internal error, counted in
    ``rpc:drops_internal_error`` and logged; the connection closes, the router goes on.
    """
    async with stream:
        try:
            limits.local_clients.acquire_nowait()
        except trio.WouldBlock:
            counters.refused_clients.value += 1
            log.warning("RPC: refusing a connection, %d clients already connected",
                        limits.local_clients.total_tokens)
            await _last_word(stream, error_reply(ERROR_SERVER_ERROR, "Server error",
                                                 data="too many RPC clients connected"), limits)
            return
        try:
            await _converse(stream, dispatcher, limits)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.debug("RPC client went away")
        except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
            counters.guard.failed(f"stream socket client {peer_of(stream)}", exc)
            await _last_word(stream, error_reply(ERROR_INTERNAL_ERROR, "Internal error",
                                                 data="internal error; see the router log"),
                             limits)
        finally:
            limits.local_clients.release()


def peer_of(stream: trio.abc.Stream) -> str:
    """``pid 123 uid 1000`` of a Unix socket peer (for log lines), or ``unknown``."""
    try:
        sock = stream.socket  # type: ignore[attr-defined]
        pid, uid, _ = struct.unpack("3i", sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except (AttributeError, OSError):
        return "unknown"
    return f"pid {pid} uid {uid}"


async def _last_word(stream: trio.abc.Stream, reply: bytes, limits: Limits) -> None:
    """Send a final error reply if the client still listens."""
    try:
        await send_reply(stream, reply, limits)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _converse(stream: trio.abc.Stream, dispatcher: Dispatcher, limits: Limits) -> None:
    splitter = JsonSplitter(limits.max_request_size)
    while True:
        data = None
        with trio.move_on_after(limits.client_timeout if splitter.pending else limits.idle_timeout):
            data = await stream.receive_some(RECEIVE_SIZE)
        if data is None:
            log.debug("RPC client timed out (%s)", "mid-request" if splitter.pending else "idle")
            return
        if not data:
            last = splitter.finish()
            if last is not None:
                await _answer(stream, dispatcher, last, limits)
            return
        try:
            documents = splitter.feed(data)
        except DocumentTooLarge as exc:
            for document in exc.documents:
                if not await _answer(stream, dispatcher, document, limits):
                    return
            await send_reply(stream, error_reply(ERROR_INVALID_REQUEST, "Invalid Request",
                                                 data=str(exc)), limits)
            return
        for document in documents:
            if not await _answer(stream, dispatcher, document, limits):
                return


async def _answer(stream: trio.abc.Stream, dispatcher: Dispatcher, document: bytes,
                  limits: Limits) -> bool:
    reply = await dispatcher.handle(document)
    return reply is None or await send_reply(stream, reply, limits)


async def send_reply(stream: trio.abc.Stream, reply: bytes, limits: Limits) -> bool:
    """Write one reply line; False when the client did not take it in time."""
    with trio.move_on_after(limits.client_timeout):
        await stream.send_all(reply + b"\n")
        return True
    log.warning("RPC client did not read its %d-byte reply within %ss; closing",
                len(reply), limits.client_timeout)
    return False
