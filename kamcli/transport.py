"""Client transports: carry one request document to the router and bring its reply back.

A target is a socket/FIFO path or a URL:

- ``PATH`` (``-s``): the kind is detected: a FIFO, else a Unix stream socket (kamrouter's
  default), else a Unix datagram socket (Kamailio's jsonrpcs ``dgram_socket``);
- ``unix:PATH``, ``dgram:PATH``, ``fifo:PATH``: that kind, no detection;
- ``http://host:port/RPC`` (``https`` too): ``POST`` to kamrouter or Kamailio's xhttp. With
  a token file (``token_file`` in kamcli.toml or ``KAMCLI_TOKEN_FILE``) its first line goes as
  ``Authorization: Bearer <token>``, or as basic auth when it reads ``user:password``
  (kamrouter's ``rpc.http_auth_file`` format); ``http://user:password@host/RPC`` works too.

All use plain blocking sockets with a deadline per exchange: kamcli talks to one router at a
time, and the stdlib keeps ``kamcli`` quick to start. Every failure becomes
:class:`~kamcli.errors.Unreachable` with a message saying what was tried.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import select
import socket
import stat
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from kamcli.errors import ConfigFileError, Unreachable

Kind = Literal["auto", "stream", "dgram", "fifo", "http"]
_SCHEMES: dict[str, Kind] = {"unix": "stream", "dgram": "dgram", "fifo": "fifo"}
#: Largest datagram reply accepted.
MAX_DATAGRAM = 4 << 20
_HINT = "is the router running? Point kamcli at its control socket with -s PATH or -u URL"


@dataclass(frozen=True)
class Target:
    kind: Kind
    address: str

    @classmethod
    def from_socket(cls, path: str) -> Target:
        return cls("auto", os.path.expanduser(path))

    @classmethod
    def from_url(cls, url: str) -> Target:
        scheme, sep, rest = url.partition(":")
        if sep and scheme in ("http", "https"):
            return cls("http", url)
        if sep and scheme in _SCHEMES and rest:
            path = rest[2:] if rest.startswith("//") else rest
            return cls(_SCHEMES[scheme], os.path.expanduser(path))
        raise ValueError(f"{url!r}: expected http://HOST:PORT/RPC, unix:PATH, dgram:PATH "
                         "or fifo:PATH")

    def __str__(self) -> str:
        return self.address if self.kind in ("auto", "http") else f"{self.kind}:{self.address}"


class Transport(Protocol):
    def exchange(self, request: bytes) -> bytes:
        """Send one request document; return the reply document."""

    def close(self) -> None:
        ...


def open_transport(target: Target, timeout: float, fifo_reply_dir: str,
                   token_file: str | None = None) -> Transport:
    if target.kind == "http":
        return HttpTransport(target.address, timeout, token_file)
    if target.kind == "fifo":
        return FifoTransport(target.address, timeout, fifo_reply_dir)
    if target.kind == "dgram":
        return DatagramTransport(target.address, timeout)
    if target.kind == "stream":
        return StreamTransport(target.address, timeout)
    return _detect(target.address, timeout, fifo_reply_dir)


def _detect(path: str, timeout: float, fifo_reply_dir: str) -> Transport:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Unreachable(f"no control socket at {path}: {_HINT}") from None
    except PermissionError:
        raise Unreachable(f"permission denied reaching {path}: run kamcli as a user of the "
                          "router's group (rpc.group) or as the router's user") from None
    if stat.S_ISFIFO(mode):
        return FifoTransport(path, timeout, fifo_reply_dir)
    if not stat.S_ISSOCK(mode):
        raise Unreachable(f"{path} is neither a socket nor a FIFO: {_HINT}")
    stream = StreamTransport(path, timeout)
    try:
        stream.connect()
    except _WrongSocketType:
        return DatagramTransport(path, timeout)
    return stream


class _WrongSocketType(Exception):
    """A stream connect met a datagram socket (or the other way round)."""


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.end = time.monotonic() + timeout

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise _timed_out(what, self.timeout)
        return remaining


def _timed_out(what: str, timeout: float) -> Unreachable:
    return Unreachable(f"{what}: no reply within {timeout:g}s (raise --timeout, or check "
                       "that the router is responsive)")


def _unix_connect(sock: socket.socket, path: str) -> None:
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EPROTOTYPE:
            raise _WrongSocketType from None
        if exc.errno == errno.ENOENT:
            raise Unreachable(f"no control socket at {path}: {_HINT}") from None
        if exc.errno == errno.ECONNREFUSED:
            raise Unreachable(f"nothing listens on {path} (a stale socket file?): "
                              f"{_HINT}") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise Unreachable(f"permission denied on {path}: run kamcli as a user of the "
                              "router's group (rpc.group) or as the router's user") from None
        raise Unreachable(f"cannot connect to {path}: {exc.strerror}") from None


class StreamTransport:
    """kamrouter's Unix stream socket: one connection, reused; replies end with a newline."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        _unix_connect(sock, self.path)
        self._sock = sock

    def _usable(self) -> bool:
        """False when the router closed our idle connection (e.g. its idle timeout)."""
        if self._sock is None:
            return False
        readable, _, _ = select.select([self._sock], [], [], 0)
        return not readable  # an idle connection only turns readable at end-of-file

    def exchange(self, request: bytes) -> bytes:
        if not self._usable():
            self.close()
            self.connect()
        assert self._sock is not None
        deadline = _Deadline(self.timeout)
        try:
            self._sock.sendall(request + b"\n")
            return self._read_reply(self._sock, deadline)
        except TimeoutError:
            self.close()
            raise _timed_out(self.path, self.timeout) from None
        except OSError as exc:
            self.close()
            raise Unreachable(f"{self.path}: connection failed: {exc.strerror}") from None

    def _read_reply(self, sock: socket.socket, deadline: _Deadline) -> bytes:
        buffer = bytearray()
        while True:
            sock.settimeout(deadline.left(self.path))
            chunk = sock.recv(1 << 20)
            if not chunk:
                self.close()
                if buffer.strip():
                    return bytes(buffer)
                raise Unreachable(f"{self.path}: the router closed the connection without "
                                  "a reply")
            buffer += chunk
            # kamrouter ends each reply with a newline; a server that pretty-prints (or
            # closes after replying, as Kamailio's TCP transport) is also understood.
            if buffer.endswith(b"\n") and _is_json(buffer):
                return bytes(buffer)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _is_json(data: bytes | bytearray) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


class DatagramTransport:
    """A Unix datagram socket (Kamailio jsonrpcs ``dgram_socket``, or kamrouter's).

    Each exchange binds a fresh abstract autobind address (Linux) for the reply: nothing to
    clean up on disk, no permissions for the server to satisfy, and no late reply to an
    earlier, timed-out request can be mistaken for the current one.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout

    def exchange(self, request: bytes) -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind("")
            _unix_connect(sock, self.path)
            sock.settimeout(self.timeout)
            try:
                sock.send(request)
                return sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                raise _timed_out(self.path, self.timeout) from None
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    raise Unreachable(f"{self.path}: request too large for a datagram; use "
                                      "the stream socket or HTTP") from None
                raise Unreachable(f"{self.path}: {exc.strerror}") from None
        except _WrongSocketType:
            raise Unreachable(f"{self.path} is not a datagram socket; try unix:{self.path}"
                              ) from None
        finally:
            sock.close()

    def close(self) -> None:
        """Nothing stays open between exchanges."""


class FifoTransport:
    """A FIFO (Kamailio jsonrpcs ``fifo_name``, or kamrouter's ``rpc.fifo``).

    The request names a reply FIFO that kamcli creates in ``reply_dir`` (the server's
    ``fifo_reply_dir``) with a unique name, reads, and always removes. The name has no dot:
    Kamailio's jsonrpcs refuses reply names containing one ("Forbidden reply fifo filename").
    """

    def __init__(self, path: str, timeout: float, reply_dir: str) -> None:
        self.path, self.timeout, self.reply_dir = path, timeout, reply_dir

    def exchange(self, request: bytes) -> bytes:
        deadline = _Deadline(self.timeout)
        reply_name = reply_fifo_name()
        reply_path = os.path.join(self.reply_dir, reply_name)
        try:
            # Writable by the server's user too (it may not be ours); the name is random.
            os.mkfifo(reply_path, 0o622)
            os.chmod(reply_path, 0o622)
        except OSError as exc:
            raise Unreachable(f"cannot create a reply FIFO in {self.reply_dir}: {exc.strerror}"
                              " (set fifo_reply_dir in kamcli.toml)") from None
        try:
            reader = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                self._send(_with_reply_name(request, reply_name))
                try:
                    return self._receive(reader, deadline)
                except Unreachable:
                    raise self._no_reply() from None
            finally:
                os.close(reader)
        finally:
            os.unlink(reply_path)

    def _no_reply(self) -> Unreachable:
        return Unreachable(
            f"{self.path}: no reply within {self.timeout:g}s in {self.reply_dir}: check that "
            f"the server's fifo_reply_dir is {self.reply_dir} (kamcli.toml fifo_reply_dir) "
            "and that it may write there, or raise --timeout")

    def _send(self, request: bytes) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise Unreachable(f"no FIFO at {self.path}: {_HINT}") from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise Unreachable(f"no process reads the FIFO {self.path}: {_HINT}") from None
            raise Unreachable(f"cannot open {self.path}: {exc.strerror}") from None
        try:
            os.set_blocking(fd, True)
            os.write(fd, request + b"\n")
        finally:
            os.close(fd)

    def _receive(self, reader: int, deadline: _Deadline) -> bytes:
        buffer = bytearray()
        while True:
            readable, _, _ = select.select([reader], [], [], deadline.left(self.path))
            if not readable:
                continue
            chunk = os.read(reader, 1 << 20)
            if chunk:
                buffer += chunk
                if _is_json(buffer):
                    return bytes(buffer)
            elif buffer:  # the server closed the reply FIFO: that was all of it
                return bytes(buffer)
            else:  # no writer has come yet: Linux reports an idle FIFO as readable
                time.sleep(0.01)

    def close(self) -> None:
        """Nothing stays open between exchanges."""


def reply_fifo_name() -> str:
    """A unique reply FIFO name of letters, digits and underscores only."""
    return f"kamcli_reply_{os.getpid()}_{secrets.token_hex(4)}"


def _with_reply_name(request: bytes, reply_name: str) -> bytes:
    document = json.loads(request)
    document["reply_name"] = reply_name
    return json.dumps(document).encode()


class HttpTransport:
    """``POST`` to a JSON-RPC URL (kamrouter ``[rpc] http``, Kamailio xhttp + jsonrpcs)."""

    def __init__(self, url: str, timeout: float, token_file: str | None = None) -> None:
        import httpx  # imported here: it costs ~90 ms, only HTTP users should pay it

        self.url = url
        self._httpx = httpx
        auth, headers = (_credentials(os.path.expanduser(token_file)) if token_file
                         else (None, {}))
        self._client = httpx.Client(timeout=timeout, auth=auth, headers=headers)

    def exchange(self, request: bytes) -> bytes:
        httpx = self._httpx
        try:
            response = self._client.post(self.url, content=request,
                                         headers={"content-type": "application/json"})
        except httpx.TimeoutException:
            raise Unreachable(f"{self.url}: no reply within the timeout (raise --timeout)"
                              ) from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {self.url}: {exc}: {_HINT}") from None
        if response.status_code == 401:
            raise Unreachable(f"{self.url}: HTTP 401: the router wants credentials: set "
                              "token_file in kamcli.toml or KAMCLI_TOKEN_FILE (a file with the "
                              "token, or user:password)")
        if response.status_code != 200:
            raise Unreachable(f"{self.url}: HTTP {response.status_code} "
                              f"{response.reason_phrase}: {response.text.strip()[:200]}")
        return response.content

    def close(self) -> None:
        self._client.close()


def _credentials(path: str) -> tuple[tuple[str, str] | None, dict[str, str]]:
    """(basic auth, headers) from the first line of ``path`` that is neither blank nor a
    ``#`` comment: ``user:password`` is basic auth, anything else a bearer token."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.strip() for line in file]
    except OSError as exc:
        raise ConfigFileError(f"token file {path}: {exc.strerror}") from None
    secret = next((line for line in lines if line and not line.startswith("#")), None)
    if secret is None:
        raise ConfigFileError(f"token file {path}: no token (or user:password) in it")
    user, sep, password = secret.partition(":")
    if sep:
        return (user, password), {}
    return None, {"Authorization": f"Bearer {secret}"}
