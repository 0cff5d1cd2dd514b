"""Loading (and reloading) the operator's routing script.

A script is a Python file defining ``request_route(msg)`` and optionally ``reply_route``,
named failure/branch/reply routes (any function, armed by name or object), ``event(name,
data)`` and ``@on_event(name)`` handlers. Hooks may be plain functions (fast path) or
``async def`` (they may await I/O; their transaction is parked meanwhile).
"""
from __future__ import annotations

import importlib.util
import inspect
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

_apis: dict[str, object] = {}
_loading_handlers: dict[str, Callable[..., Any]] | None = None
_generation = itertools.count(1)


class ScriptError(Exception):
    """The script cannot be used; the message says why (file, line, missing hook)."""


def current_apis() -> dict[str, object]:
    return _apis


def set_apis(apis: dict[str, object]) -> None:
    """Install the APIs scripts import (done by the router before loading its script)."""
    _apis.clear()
    _apis.update(apis)


def on_event(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: run the function for module event ``name`` (e.g. ``htable:expired:bans``)."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if _loading_handlers is None:
            raise ScriptError("@on_event can only be used at the top level of a routing script")
        _loading_handlers[name] = func
        return func

    return register


class Script:
    """A loaded routing script and its hooks."""

    def __init__(self, module: ModuleType, path: Path, handlers: dict[str, Callable[..., Any]]
                 ) -> None:
        self.module = module
        self.path = path
        self.event_handlers = handlers
        request_route = getattr(module, "request_route", None)
        if not callable(request_route):
            raise ScriptError(f"{path}: no request_route(msg) function defined")
        self.request_route: Callable[..., Any] = request_route
        self.request_route_is_async = inspect.iscoroutinefunction(request_route)
        reply_route = getattr(module, "reply_route", None)
        if reply_route is not None and inspect.iscoroutinefunction(reply_route):
            raise ScriptError(f"{path}: reply_route must be a plain def (it cannot await)")
        self.reply_route: Callable[..., Any] | None = reply_route
        self.event_hook: Callable[..., Any] | None = getattr(module, "event", None)

    def resolve(self, handler: Any) -> Callable[..., Any]:
        """A failure/branch/reply route given as a function or by name."""
        if callable(handler):
            return handler
        func = getattr(self.module, str(handler), None)
        if not callable(func):
            raise ScriptError(f"{self.path}: no route function named {handler!r}")
        return func

    def event_handler(self, name: str) -> Callable[..., Any] | None:
        return self.event_handlers.get(name) or self.event_hook


def read_script(path: str | Path) -> bytes:
    """The source of the script at ``path``; ScriptError if there is none to read."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ScriptError(f"{path}: routing script not found")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc.strerror}") from None


def load_script(path: str | Path, source: bytes | None = None) -> Script:
    """Import ``path`` as a fresh module (so a reload never mixes old and new code).

    The source is read and compiled every time, never a cached ``.pyc`` (whose mtime/size
    check misses an edit within the same second that keeps the size); or it is ``source``,
    what a supervisor read from ``path`` for every worker. Whatever the import raises,
    ``SystemExit`` and ``KeyboardInterrupt`` included, becomes a :class:`ScriptError`, so a
    reload that fails keeps the script that runs.
    """
    global _loading_handlers
    path = Path(path).resolve()
    if source is None:
        source = read_script(path)
    name = f"kamrouter_script_{next(_generation)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    handlers: dict[str, Callable[..., Any]] = {}
    _loading_handlers = handlers
    sys.modules[name] = module
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    except ScriptError:
        raise
    except SyntaxError as exc:
        raise ScriptError(f"{exc.filename}:{exc.lineno}: {exc.msg}") from None
    except BaseException as exc:  # noqa: BLE001 - any import-time failure, even sys.exit()
        tb = exc.__traceback__
        line = "?"
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = str(tb.tb_lineno)
            tb = tb.tb_next
        raise ScriptError(f"{path}:{line}: {type(exc).__name__}: {exc}") from None
    finally:
        _loading_handlers = None
        sys.modules.pop(name, None)
    return Script(module, path, handlers)
