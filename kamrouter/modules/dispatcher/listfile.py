"""Destination definitions: Kamailio's list file and ``[[dispatcher.destination]]`` tables.

List file, one destination per line, whitespace separated::

    setid  uri  [flags  [priority  [attrs]]]      # flags decimal or 0xHEX

Lines starting with ``#`` and blank lines are ignored. The attrs column runs to the end of
the line (a quoted value may hold spaces). Every bad line is reported as ``file:line: why``
and a list with any bad line is rejected whole, so a reload never half-applies.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamrouter.modules.dispatcher.attrs import DestinationAttrs, format_attrs, parse_attrs
from kamrouter.modules.dispatcher.flags import parse_flags
from kamrouter.modules.dispatcher.uri import TargetAddress, parse_target


class ListError(Exception):
    """A destination list that cannot be used; ``problems`` names every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DestinationSpec:
    """One destination as configured (no runtime state)."""

    setid: int
    uri: str
    flags: int
    priority: int
    attrs: DestinationAttrs
    address: TargetAddress
    #: Where it was defined: ``file:line``, ``dispatcher.destination[2]`` or ``rpc``.
    origin: str

    @property
    def key(self) -> tuple[int, str, str]:
        """Identity across reloads: set, URI and local socket (the same URI may be reached
        through two sockets and is then two targets)."""
        return (self.setid, self.uri, self.attrs.socket)


def make_spec(setid: Any, uri: Any, flags: Any = 0, priority: Any = 0, attrs: Any = "",
              origin: str = "") -> DestinationSpec:
    """Check one destination's fields; raises ValueError naming the bad field."""
    if isinstance(setid, bool) or not isinstance(setid, int) or setid < 0:
        raise ValueError(f"setid {setid!r} is not a non-negative integer")
    if not isinstance(uri, str):
        raise ValueError(f"uri {uri!r} is not a string")
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise ValueError(f"flags {flags!r} is not a non-negative integer")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority {priority!r} is not an integer")
    if isinstance(attrs, dict):
        attrs = format_attrs(attrs)
    if not isinstance(attrs, str):
        raise ValueError(f"attrs {attrs!r} is not a string")
    address = parse_target(uri)
    try:
        parsed_attrs = parse_attrs(attrs)
    except ValueError as exc:
        raise ValueError(f"attrs: {exc}") from None
    return DestinationSpec(setid, uri, flags, priority, parsed_attrs, address, origin)


def _parse_line(line: str, origin: str) -> DestinationSpec:
    fields = line.split(None, 4)
    if len(fields) < 2:
        raise ValueError("expected 'setid uri [flags [priority [attrs]]]'")
    try:
        setid = int(fields[0])
    except ValueError:
        raise ValueError(f"setid {fields[0]!r} is not an integer") from None
    flags = priority = 0
    if len(fields) > 2:
        try:
            flags = parse_flags(fields[2])
        except ValueError:
            raise ValueError(f"flags {fields[2]!r} is not a non-negative decimal or 0x number") from None
    if len(fields) > 3:
        try:
            priority = int(fields[3])
        except ValueError:
            raise ValueError(f"priority {fields[3]!r} is not an integer") from None
    attrs = fields[4].strip() if len(fields) > 4 else ""
    return make_spec(setid, fields[1], flags, priority, attrs, origin)


def parse_list(text: str, source: str) -> list[DestinationSpec]:
    """Parse a list file's text; ``source`` names it in errors."""
    specs: list[DestinationSpec] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        origin = f"{source}:{number}"
        try:
            specs.append(_parse_line(line, origin))
        except ValueError as exc:
            problems.append(f"{origin}: {exc}")
    if problems:
        raise ListError(problems)
    return specs


def read_list(path: str | Path) -> list[DestinationSpec]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ListError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ListError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    return parse_list(text, str(path))


def specs_from_tables(tables: Iterable[dict[str, Any]], where: str) -> list[DestinationSpec]:
    """``[[dispatcher.destination]]`` tables (keys setid, uri, flags, priority, attrs)."""
    specs: list[DestinationSpec] = []
    problems: list[str] = []
    allowed = {"setid", "uri", "flags", "priority", "attrs"}
    for i, table in enumerate(tables):
        origin = f"{where}[{i}]"
        unknown = sorted(set(table) - allowed)
        missing = sorted({"setid", "uri"} - set(table))
        if unknown or missing:
            problems.extend(f"{origin}: unknown key {k!r}" for k in unknown)
            problems.extend(f"{origin}.{k}: missing" for k in missing)
            continue
        try:
            specs.append(make_spec(origin=origin, **table))
        except ValueError as exc:
            problems.append(f"{origin}: {exc}")
    if problems:
        raise ListError(problems)
    return specs
