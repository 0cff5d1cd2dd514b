"""The RPC method registry: modules register methods here; the transports dispatch to them.

A method is a plain or ``async`` callable. Its parameters are the RPC params: a JSON array
binds them by position (as Kamailio's jsonrpcs does), a JSON object by name. Its docstring
is what ``system.methodHelp`` returns: one line per paragraph, so write it for operators.
A method signals failure by raising :class:`RpcError` with a Kamailio-style code (400, 404,
500) and a message. Annotated parameters are type-checked before the call (see
:mod:`kamrouter.rpc.params`), so a method may trust that ``table: str`` is a string.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kamrouter.rpc.params import ParamCheck, param_checks, usage


class RpcError(Exception):
    """A module-level RPC failure: ``code`` (e.g. 400, 404, 500) and a message for the user."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: The error's ``data`` member (e.g. a worker's error passed on as it was); None: none.
        self.data = data


@dataclass(frozen=True)
class RpcMethod:
    name: str
    func: Callable[..., Any]
    signature: inspect.Signature
    #: Type checks of annotated parameters, by parameter name.
    checks: dict[str, ParamCheck]

    @property
    def help(self) -> str:
        paragraphs = inspect.cleandoc(self.func.__doc__ or "").replace("``", "").split("\n\n")
        return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip()) or (
            "No help available.")

    @property
    def usage(self) -> str:
        """``htable.get(table, key)``."""
        return usage(self.name, self.signature)


class MethodRegistry:
    """Method name → :class:`RpcMethod`, filled by the core and by each loaded module."""

    def __init__(self) -> None:
        self._methods: dict[str, RpcMethod] = {}

    def register(self, name: str, func: Callable[..., Any]) -> None:
        if name in self._methods:
            raise ValueError(f"RPC method {name!r} is already registered")
        signature = inspect.signature(func)
        self._methods[name] = RpcMethod(
            name, func, signature, param_checks(func, signature)
        )

    def method(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`register`."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(name, func)
            return func

        return decorate

    def get(self, name: str) -> RpcMethod | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)
