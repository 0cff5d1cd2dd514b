"""FIFO transport, as Kamailio's jsonrpcs ``fifo_name``.

Clients write request documents into the FIFO; a request object carrying ``"reply_name"``
gets its reply written into the FIFO of that name inside ``fifo_reply_dir``, which the client
created and reads from (a plain file name only: no paths, no symlinks, nothing but a FIFO is
ever written to). Writes of up to PIPE_BUF (4096) bytes are atomic; larger requests from
concurrent writers can interleave, a limit of FIFOs that the stream socket does not have.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import stat

import trio

from kamrouter.config import ConfigError
from kamrouter.rpc.dispatch import Dispatcher, Refused
from kamrouter.rpc.framing import DocumentTooLarge, JsonSplitter
from kamrouter.rpc.transports.limits import RECEIVE_SIZE, Counters, Limits
from kamrouter.rpc.transports.socketfile import Ownership, clear_stale_fifo, remove_if_ours

log = logging.getLogger("kamrouter.rpc")

#: A reply FIFO name in a document that could not be parsed as a whole.
_REPLY_NAME = re.compile(rb'"reply_name"\s*:\s*"([A-Za-z0-9._-]{1,255})"')
#: How often to retry opening a reply FIFO whose reader is not there yet, seconds.
REPLY_OPEN_RETRY = 0.02


async def serve_fifo(path: str, reply_dir: str, dispatcher: Dispatcher, limits: Limits,
                     ownership: Ownership, counters: Counters,
                     *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Read requests from the FIFO ``path`` until cancelled, then remove it."""
    clear_stale_fifo(path, "rpc.fifo")
    try:
        os.mkfifo(path, 0o600)
        ownership.apply(path)
    except OSError as exc:
        raise ConfigError([f"rpc.fifo: cannot create {path}: {exc.strerror}"]) from None
    inode = os.stat(path).st_ino
    reader = trio.lowlevel.FdStream(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    # Holding a write end ourselves keeps the reader from seeing end-of-file whenever the
    # last client closes, which would otherwise turn the read loop into a busy loop.
    keep_open = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        async with reader, trio.open_nursery() as nursery:
            task_status.started()
            splitter = JsonSplitter(limits.max_request_size)
            while True:
                data = None
                with trio.move_on_after(limits.client_timeout if splitter.pending else float("inf")):
                    data = await reader.receive_some(RECEIVE_SIZE)
                if data is None:
                    log.warning("RPC FIFO: dropping an incomplete request (writer stalled)")
                    splitter = JsonSplitter(limits.max_request_size)
                    continue
                try:
                    documents = splitter.feed(data)
                except DocumentTooLarge as exc:
                    log.warning("RPC FIFO: dropping a request: %s", exc)
                    documents = exc.documents
                    splitter = JsonSplitter(limits.max_request_size)
                except Exception as exc:  # noqa: BLE001 - a framing bug drops the buffer only
                    counters.guard.failed("FIFO writer", exc)
                    documents = []
                    splitter = JsonSplitter(limits.max_request_size)
                for document in documents:
                    nursery.start_soon(_answer, document, reply_dir, dispatcher, limits,
                                       counters)
    finally:
        os.close(keep_open)
        remove_if_ours(path, inode)


async def _answer(raw: bytes, reply_dir: str, dispatcher: Dispatcher, limits: Limits,
                  counters: Counters) -> None:
    """Answer one document; a failure that escapes (a bug) drops it, counted in
    ``rpc:drops_internal_error`` and logged (its reply FIFO may not even be known)."""
    try:
        await _process(raw, reply_dir, dispatcher, limits)
    except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
        counters.guard.failed("FIFO writer", exc)


async def _process(raw: bytes, reply_dir: str, dispatcher: Dispatcher, limits: Limits) -> None:
    try:
        document = dispatcher.parse(raw)
    except Refused as refused:
        # Unreadable as a whole (e.g. past the JSON limits): answer the Parse error to the
        # reply FIFO it names, if a plain reply_name can be found in it.
        found = _REPLY_NAME.search(raw)
        if found is None:
            log.warning("RPC FIFO: unreadable request (no reply_name to answer to): %s",
                        refused)
            return
        reply_name: object = found.group(1).decode("ascii")
        reply: bytes | None = refused.reply
    else:
        reply_name = document.get("reply_name") if isinstance(document, dict) else None
        reply = await dispatcher.handle_document(document)
    if reply is None or reply_name is None:
        return
    if not _plain_name(reply_name):
        log.warning("RPC FIFO: ignoring reply_name %r: must be a file name in %s",
                    reply_name, reply_dir)
        return
    await _write_reply(os.path.join(reply_dir, str(reply_name)), reply + b"\n", limits)


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name


async def _write_reply(path: str, reply: bytes, limits: Limits) -> None:
    with trio.move_on_after(limits.client_timeout):
        fd = await _open_reader_end(path)
        if fd is None:
            return
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            log.warning("RPC FIFO: reply target %s is not a FIFO; not writing to it", path)
            return
        async with trio.lowlevel.FdStream(fd) as stream:
            try:
                await stream.send_all(reply)
            except trio.BrokenResourceError:
                log.debug("RPC FIFO: reader of %s went away", path)
        return
    log.warning("RPC FIFO: nobody read the reply FIFO %s within %ss", path, limits.client_timeout)


async def _open_reader_end(path: str) -> int | None:
    """Open ``path`` for writing once its reader is there (non-blocking opens fail before)."""
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                log.warning("RPC FIFO: cannot open reply FIFO %s: %s", path, exc.strerror)
                return None
        await trio.sleep(REPLY_OPEN_RETRY)
