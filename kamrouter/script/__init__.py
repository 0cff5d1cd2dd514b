"""Routing scripts: what an operator's ``routes.py`` imports.

``from kamrouter.script import tm, sl, rr, path, maxfwd, sanity, core`` and any loaded module's API
(``dispatcher``, ``htable``, ...) resolve against the router that is loading the script.
``on_event("dispatcher:dst-down")`` decorates a handler for a module event.
"""
from __future__ import annotations

from typing import Any

from kamrouter.script.loader import current_apis, on_event
from kamrouter.script.message import ScriptMessage

__all__ = ["ScriptMessage", "on_event"]


def __getattr__(name: str) -> Any:
    apis = current_apis()
    if name in apis:
        return apis[name]
    raise ImportError(
        f"kamrouter.script has no API {name!r}: built-ins are sl, tm, rr, path, maxfwd, sanity, "
        f"core; a module's API exists only when the module is loaded (add a [{name}] "
        f"section to the config or list it in core.load_modules)")
