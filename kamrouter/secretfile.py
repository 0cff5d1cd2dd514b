"""Reading secrets (tokens, passwords, shared secrets) from files named in the config.

Secrets stay out of the config file itself, which is often world-readable or kept in
version control. A secret file must not be readable by others, nor writable by its group
or others; a problem is a :class:`~kamrouter.config.ConfigError` naming the config key and
saying what to fix.
"""
from __future__ import annotations

import os
import stat

from kamrouter.config import ConfigError


def read_secret_lines(path: str, key: str) -> list[bytes]:
    """The non-blank lines of ``path`` that are not ``#`` comments, stripped; at least one."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError([f"{key}: cannot read {path}: {exc.strerror}"]) from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP):
            raise ConfigError([f"{key}: {path} is readable by others or writable by its group "
                               f"(mode {stat.S_IMODE(mode):04o}): chmod 600 {path}"])
        lines = [line.strip() for line in file.read().splitlines()]
    entries = [line for line in lines if line and not line.startswith(b"#")]
    if not entries:
        raise ConfigError([f"{key}: {path} holds no secret"])
    return entries
