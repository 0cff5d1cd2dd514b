"""Unix datagram socket transport, as Kamailio's jsonrpcs ``dgram_socket``.

One request per datagram; the reply goes back to the sender's address, so the client binds a
socket of its own (kamcli binds an abstract, autobound address: nothing to clean up, no
permission dance). A reply too large for one datagram is replaced by an error naming the
stream socket, instead of Kamailio's out-of-band ``store_path`` file.
"""
from __future__ import annotations

import errno
import logging
import socket

import trio

from kamrouter import boundedjson
from kamrouter.rpc.dispatch import (
    ERROR_INTERNAL_ERROR,
    ERROR_INVALID_REQUEST,
    ERROR_SERVER_ERROR,
    Dispatcher,
    error_reply,
)
from kamrouter.rpc.transports.limits import Counters, Limits
from kamrouter.rpc.transports.socketfile import (
    Ownership,
    bind_unix,
    clear_stale_socket,
    remove_if_ours,
)

log = logging.getLogger("kamrouter.rpc")

#: Send buffer asked for, which bounds the largest reply datagram (the kernel may cap it).
SEND_BUFFER = 4 << 20
#: Requests handled at once; datagrams beyond that wait in the socket's receive queue.
MAX_IN_FLIGHT = 16


async def serve_dgram(path: str, dispatcher: Dispatcher, limits: Limits, ownership: Ownership,
                      counters: Counters, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve requests arriving on the Unix datagram socket ``path`` until cancelled."""
    clear_stale_socket(path, socket.SOCK_DGRAM, "rpc.dgram_socket")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    inode = await bind_unix(sock, path, "rpc.dgram_socket", ownership)
    in_flight = trio.Semaphore(MAX_IN_FLIGHT)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                await in_flight.acquire()
                data, sender = await sock.recvfrom(limits.max_request_size + 1)
                nursery.start_soon(_answer, sock, dispatcher, limits, counters, data, sender,
                                   in_flight)
    finally:
        sock.close()
        remove_if_ours(path, inode)


async def _answer(sock: trio.socket.SocketType, dispatcher: Dispatcher, limits: Limits,
                  counters: Counters, data: bytes, sender: str | bytes,
                  in_flight: trio.Semaphore) -> None:
    """Answer one datagram; a failure that escapes (a bug) is answered with an Internal
    error when possible, counted in ``rpc:drops_internal_error`` and logged."""
    try:
        if len(data) > limits.max_request_size:
            reply: bytes | None = error_reply(
                ERROR_INVALID_REQUEST, "Invalid Request",
                data=f"request larger than {limits.max_request_size} bytes")
        else:
            reply = await dispatcher.handle(data)
        if reply is None or not sender:  # a notification, or nowhere to answer
            return
        await _send(sock, reply, sender, data, limits)
    except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
        counters.guard.failed(f"datagram client {sender!r}", exc)
        if sender:
            with trio.move_on_after(limits.client_timeout):
                try:
                    await sock.sendto(error_reply(ERROR_INTERNAL_ERROR, "Internal error",
                                                  data="internal error; see the router log"),
                                      sender)
                except OSError:
                    pass
    finally:
        in_flight.release()


async def _send(sock: trio.socket.SocketType, reply: bytes, sender: str | bytes,
                request: bytes, limits: Limits) -> None:
    with trio.move_on_after(limits.client_timeout):
        try:
            await sock.sendto(reply, sender)
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE:
                log.debug("RPC datagram reply to %r failed: %s", sender, exc.strerror)
                return
            log.warning("RPC datagram reply of %d bytes is too large", len(reply))
            try:
                await sock.sendto(error_reply(
                    ERROR_SERVER_ERROR, "Server error", _request_id(request),
                    f"the reply ({len(reply)} bytes) does not fit in a datagram; "
                    "use the stream socket"), sender)
            except OSError as again:
                log.debug("RPC datagram error reply to %r failed: %s", sender, again.strerror)
        return
    log.warning("RPC datagram client %r did not take its reply within %ss",
                sender, limits.client_timeout)


def _request_id(request: bytes) -> object:
    try:
        document = boundedjson.loads(request)
    except ValueError:
        return None
    return document.get("id") if isinstance(document, dict) else None
