"""Binding JSON-RPC params to a method's Python signature, with type checks that name the parameter.

Params arrive as a JSON array (positional, as Kamailio's jsonrpcs sends them) or a JSON object
(bound by parameter name, as JSON-RPC 2.0 defines it). Annotations of the simple JSON types
(``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``, unions of them and ``None``) are
checked, so a module never sees a string where it declared an int. One leniency, as Kamailio
allows for string parameters: a JSON integer given for a ``str`` parameter becomes its decimal
text (``htable.get mytable 1234`` works without quoting).
"""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_JSON_TYPE_NAMES: dict[type, str] = {
    int: "an integer", float: "a number", str: "a string", bool: "a boolean",
    list: "an array", dict: "an object", type(None): "null",
}


class InvalidParams(Exception):
    """The params do not fit the method's signature; the message names the parameter."""


@dataclass(frozen=True)
class ParamCheck:
    """Accepted JSON types of one parameter (empty: anything goes)."""

    types: tuple[type, ...]

    def describe(self) -> str:
        return " or ".join(_JSON_TYPE_NAMES[t] for t in self.types)

    def apply(self, name: str, value: Any) -> Any:
        if not self.types or _matches(value, self.types):
            return value
        if str in self.types and type(value) is int:
            return str(value)
        raise InvalidParams(f"parameter '{name}' must be {self.describe()}, got {_describe(value)}")


def _matches(value: Any, accepted: tuple[type, ...]) -> bool:
    kind = type(value)
    if kind is bool:
        return bool in accepted
    if kind is int:
        return int in accepted or float in accepted
    return kind in accepted


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, (list, dict)) else ""
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}".rstrip()


def _json_types(annotation: Any) -> tuple[type, ...]:
    """The JSON types an annotation admits; ``()`` for anything we do not check."""
    if annotation is None or annotation is type(None):
        return (type(None),)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_json_types(arg) for arg in typing.get_args(annotation)]
        if any(not part for part in parts):
            return ()
        return tuple(dict.fromkeys(t for part in parts for t in part))
    base = origin if origin is not None else annotation
    return (base,) if base in _JSON_TYPE_NAMES else ()


def param_checks(func: Callable[..., Any], signature: inspect.Signature) -> dict[str, ParamCheck]:
    """Per-parameter type checks derived from ``func``'s annotations."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: check nothing rather than fail
        return {}
    checks = {}
    for name in signature.parameters:
        accepted = _json_types(hints[name]) if name in hints else ()
        if accepted:
            checks[name] = ParamCheck(accepted)
    return checks


def usage(name: str, signature: inspect.Signature) -> str:
    """``htable.get(table, key)``: how a method is called, for error messages and help."""
    parts = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            parts.append(f"[{param.name}...]")
        elif param.kind is param.VAR_KEYWORD:
            continue
        elif param.default is not param.empty:
            parts.append(f"[{param.name}]")
        else:
            parts.append(param.name)
    return f"{name}({', '.join(parts)})"


def bind(name: str, signature: inspect.Signature, checks: dict[str, ParamCheck],
         params: list[Any] | dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Check ``params`` against the method; return ``(args, kwargs)`` to call it with."""
    try:
        bound = (signature.bind(*params) if isinstance(params, list)
                 else signature.bind(**params))
    except TypeError as exc:
        raise InvalidParams(f"{exc}; usage: {usage(name, signature)}") from None
    for pname, value in bound.arguments.items():
        check = checks.get(pname)
        if check is None:
            continue
        kind = signature.parameters[pname].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            bound.arguments[pname] = tuple(
                check.apply(f"{pname}[{i}]", item) for i, item in enumerate(value))
        elif kind is not inspect.Parameter.VAR_KEYWORD:
            bound.arguments[pname] = check.apply(pname, value)
    return list(bound.args), dict(bound.kwargs)
