"""dialplan: Kamailio's rule-based string translation (number normalisation, service
detection) with its match operators, priorities, substitutions and attrs.

Files, one job each: ``config`` ([dialplan] section), ``patterns`` (the exact/regex/fnmatch
operators, compiled and checked once), ``rules`` (rules, index and translation, sans-IO),
``files`` (rules from CSV/TOML), ``api`` (script API), ``rpc`` (dialplan.* methods),
``module`` (wiring, reload).
"""
from kamrouter.modules.dialplan.module import DialplanModule

__all__ = ["DialplanModule"]
