"""The attrs column: ``k1=v1;k2=v2`` (a value may be double-quoted to hold ``;``).

Known keys (case-insensitive) are parsed and checked; any other key is kept verbatim, so a
script can read it through the selected target's ``attrs``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kamrouter.net import parse_socket
from kamrouter.sip import sip_uri_problem

_PERCENT = range(0, 101)


@dataclass(frozen=True)
class DestinationAttrs:
    body: str = ""
    duid: str = ""
    weight: int = 0
    rweight: int = 0
    maxload: int = 0
    socket: str = ""
    sockname: str = ""
    ping_from: str = ""
    obproxy: str = ""
    #: Initial latency estimate (ms) before the first probe reply.
    latency: int = 0
    #: Every key=value pair as written, known keys included.
    values: dict[str, str] = field(default_factory=dict)


def split_attrs(body: str) -> list[tuple[str, str]]:
    """``a=1;b="x;y";c`` -> [("a","1"), ("b","x;y"), ("c","")]."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(body)
    while i < n:
        end = i
        while end < n and body[end] not in "=;":
            end += 1
        name = body[i:end].strip()
        value = ""
        i = end
        if i < n and body[i] == "=":
            i += 1
            while i < n and body[i] == " ":
                i += 1
            if i < n and body[i] == '"':
                close = body.find('"', i + 1)
                if close < 0:
                    raise ValueError(f"unterminated quoted value of {name!r}")
                value = body[i + 1:close]
                i = close + 1
                while i < n and body[i] == " ":
                    i += 1
                if i < n and body[i] != ";":
                    raise ValueError(f"garbage after the quoted value of {name!r}")
            else:
                end = body.find(";", i)
                end = n if end < 0 else end
                value = body[i:end].strip()
                i = end
        if name:
            pairs.append((name, value))
        elif value:
            raise ValueError(f"value {value!r} without a name")
        i += 1  # skip the ';'
    return pairs


def _int_in(name: str, value: str, allowed: range) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected an integer") from None
    if number not in allowed:
        raise ValueError(f"{name}={value}: must be between {allowed.start} and {allowed.stop - 1}")
    return number


def _sip_uri(name: str, value: str) -> str:
    problem = sip_uri_problem(value)
    if problem is not None:
        raise ValueError(f"{name}: {problem}")
    return value


def _socket(name: str, value: str) -> str:
    try:
        parse_socket(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return value


_PARSERS = {
    "duid": lambda name, value: value,
    "weight": lambda name, value: _int_in(name, value, _PERCENT),
    "rweight": lambda name, value: _int_in(name, value, _PERCENT),
    "maxload": lambda name, value: _int_in(name, value, range(0, 1 << 31)),
    "latency": lambda name, value: _int_in(name, value, range(0, 1 << 31)),
    "socket": _socket,
    "sockname": lambda name, value: value,
    "ping_from": _sip_uri,
    "obproxy": _sip_uri,
}


def parse_attrs(body: str) -> DestinationAttrs:
    """Parse an attrs string; raises ValueError naming the offending attribute."""
    body = body.strip()
    known: dict[str, object] = {}
    values: dict[str, str] = {}
    for name, value in split_attrs(body):
        values[name] = value
        parser = _PARSERS.get(name.lower())
        if parser is not None:
            known[name.lower()] = parser(name, value)
    return DestinationAttrs(body=body, values=values, **known)  # type: ignore[arg-type]


def format_attrs(values: dict[str, object]) -> str:
    """A TOML attrs table back to the list-file form (quoting values that hold ``;``)."""
    parts = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f'{name}="{text}"' if ";" in text else f"{name}={text}")
    return ";".join(parts)
