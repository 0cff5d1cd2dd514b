"""htable: in-memory key/value tables with expiry, persistence, RPC and Redis sharing.

Files, one job each: ``config`` ([[htable]] section), ``match`` (Kamailio's match
expressions), ``table`` (the sans-IO table: items, expiry), ``rows``/``store`` (CSV, JSON
lines, TOML, SQLite), ``persistence`` (store/write-behind on trio), ``redis_link`` (a table
kept in Redis with a coherent local copy, on :mod:`kamrouter.redis_mirror`), ``locks``
(per-key locks), ``api`` (script API), ``rpc`` (htable.* methods), ``module`` (wiring).
"""
from kamrouter.modules.htable.module import HtableModule

__all__ = ["HtableModule"]
