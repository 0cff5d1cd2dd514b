"""Socket and FIFO files: stale-file cleanup, binding, mode and ownership.

A file left behind by a router that died is removed; a file some live process still answers
on is never touched (starting a second router on the same path is an error, not a takeover).
"""
from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.rpc.config import RpcConfig


@dataclass(frozen=True)
class Ownership:
    """What socket/FIFO files get: ``mode``, and owner ids (-1 leaves one unchanged)."""

    mode: int
    uid: int = -1
    gid: int = -1

    @classmethod
    def from_config(cls, config: RpcConfig) -> Ownership:
        problems: list[str] = []
        uid = _lookup(config.user, pwd.getpwnam, "rpc.user", "user", problems)
        gid = _lookup(config.group, grp.getgrnam, "rpc.group", "group", problems)
        if problems:
            raise ConfigError(problems)
        return cls(config.mode, uid, gid)

    def apply(self, path: str) -> None:
        os.chmod(path, self.mode)
        if self.uid != -1 or self.gid != -1:
            os.chown(path, self.uid, self.gid)


def _lookup(name: str, find: Callable[[str], Any], key: str, what: str,
            problems: list[str]) -> int:
    if not name:
        return -1
    if name.isdigit():
        return int(name)
    try:
        entry = find(name)
    except KeyError:
        problems.append(f"{key}: no such {what} {name!r}")
        return -1
    return entry.pw_uid if what == "user" else entry.gr_gid


def prepare_run_dir(path: str, ownership: Ownership) -> None:
    """Create the control directory 0700 (0710 with the group's id when a group is set, so
    the group can reach the sockets inside without listing them), or check the existing one.

    An existing directory must be a real directory (not a symlink), owned by the router's
    user and not writable by group or others: anyone else who could write there could put
    their own socket or FIFO where kamcli looks for the router's (run-dir squatting).
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError([f"rpc.run_dir: cannot create {path}: {exc.strerror}"]) from None
    else:
        try:
            if ownership.gid != -1:
                os.chown(path, -1, ownership.gid)
                os.chmod(path, 0o710)
        except OSError as exc:
            raise ConfigError([f"rpc.run_dir: cannot set the group of {path}: "
                               f"{exc.strerror}"]) from None
    problem = run_dir_problem(path)
    if problem:
        raise ConfigError([f"rpc.run_dir: {problem}"])


def run_dir_problem(path: str) -> str | None:
    """Why ``path`` is not a safe control directory for this process, or None."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode):
        return (f"{path} is a symbolic link; use a real directory (remove the link, or point "
                "rpc.run_dir at the target)")
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} exists and is not a directory"
    if info.st_uid != os.geteuid():
        return (f"{path} is owned by uid {info.st_uid}, not by the router's user "
                f"(uid {os.geteuid()}): remove it, or chown {os.geteuid()} {path}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"{path} is writable by its group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): chmod go-w {path}")
    return None


def clear_stale_socket(path: str, kind: socket.SocketKind, key: str) -> None:
    """Remove ``path`` if it is a socket nobody listens on; refuse if someone does."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError([f"{key}: {path} exists and is not a socket"])
    probe = socket.socket(socket.AF_UNIX, kind)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError as exc:
        if exc.errno != errno.EPROTOTYPE:
            raise ConfigError([f"{key}: cannot check {path}: {exc.strerror}"]) from None
    finally:
        probe.close()
    raise ConfigError([f"{key}: {path} is in use by a running process (another kamrouter?)"])


def clear_stale_fifo(path: str, key: str) -> None:
    """Remove ``path`` if it is a FIFO no process reads; refuse if one does."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISFIFO(mode):
        raise ConfigError([f"{key}: {path} exists and is not a FIFO"])
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise ConfigError([f"{key}: cannot check {path}: {exc.strerror}"]) from None
        os.unlink(path)
        return
    os.close(fd)
    raise ConfigError([f"{key}: {path} is read by a running process (another kamrouter?)"])


async def bind_unix(sock: trio.socket.SocketType, path: str, key: str,
                    ownership: Ownership) -> int:
    """Bind ``sock`` at ``path`` with the configured mode/owner; return the file's inode."""
    try:
        await sock.bind(path)
        ownership.apply(path)
        return os.stat(path).st_ino
    except OSError as exc:
        raise ConfigError([f"{key}: cannot bind {path}: {exc.strerror}"]) from None


def remove_if_ours(path: str, inode: int) -> None:
    """Unlink ``path`` unless it was meanwhile replaced (e.g. by a newer router)."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
