"""Configuration: TOML files validated against dataclass schemas.

Every key has a default, so a file holds only what differs from the embedded default. Each
section (core ones here, module ones declared by the modules) is a dataclass; validation
collects *every* problem, each naming its key by its dotted path, e.g.
``tm.fr_timer: expected integer, got string 'abc'`` or ``htable[1].name: missing``.
Numbers with bounds declare them as :class:`Range` s checked by :func:`range_problems`, so
every section words them alike: ``tm.t1: must be between 50 and 60000 ms, got 0``.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import tomli

T = TypeVar("T")


class ConfigError(Exception):
    """One or more problems in a configuration; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a :class:`ConfigError` naming the file."""
    try:
        with open(path, "rb") as f:
            return tomli.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomli.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None


_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "table"}


def describe_value(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"array of {_type_name(get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp) or origin is dict:
        return "table"
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """Check ``value`` against type ``tp``; append a problem naming ``where`` when it fails."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
    elif origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            trial: list[str] = []
            converted = _convert(value, option, where, trial)
            if not trial:
                return converted
    elif origin is list:
        if isinstance(value, list):
            (item_type,) = get_args(tp)
            return [_convert(v, item_type, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return build_section(tp, value, where, problems)  # type: ignore[arg-type]
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    problems.append(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
    return None


def unknown_key(key: object, known: Iterable[str]) -> str:
    """``unknown key 'fr_timr' (did you mean 'fr_timer'?)``: the hint when one is close."""
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def build_section(cls: type[T], raw: dict[str, Any], where: str, problems: list[str]) -> T:
    """Build dataclass ``cls`` from ``raw``; unknown keys and bad types become problems.

    A dataclass may define ``validate(self) -> list[str]`` for cross-field checks; each
    message starts with the key it is about (``"listen[0]: ..."``) and gets ``where.``
    in front.
    """
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            problems.append(f"{where}: {unknown_key(key, fields)}")
            continue
        before = len(problems)
        converted = _convert(value, hints[key], f"{where}.{key}" if where else key, problems)
        if len(problems) == before:
            values[key] = converted
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        # validate() messages start with the key they are about: "listen[0]: ...".
        problems.extend(f"{where}.{message}" if where else message for message in validate())
    return instance


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive bounds of a number in a section, with the unit its message shows."""

    low: float
    high: float
    unit: str = ""
    #: A value outside the bounds that is also accepted, meaning "off" (usually 0).
    off: float | None = None

    def problem(self, key: str, value: float | None) -> str | None:
        """``t1: must be between 50 and 60000 ms, got 0``, or None when ``value`` fits
        (None, an unset optional value, always fits)."""
        if value is None or self.low <= value <= self.high or value == self.off:
            return None
        unit = f" {self.unit}" if self.unit else ""
        off = "" if self.off is None else f"{_number(self.off)} (off) or "
        return (f"{key}: must be {off}between {_number(self.low)} and {_number(self.high)}"
                f"{unit}, got {_number(value)}")


def _number(value: float) -> str:
    """1048576 as written, not 1.04858e+06; 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def range_problems(section: object, ranges: dict[str, Range]) -> list[str]:
    """The problems of ``section``'s fields named in ``ranges`` (for ``validate()``)."""
    problems = []
    for key, bounds in ranges.items():
        problem = bounds.problem(key, getattr(section, key))
        if problem is not None:
            problems.append(problem)
    return problems
