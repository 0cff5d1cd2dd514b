"""usrloc: the user location tables the registrar saves to and looks up in.

Files, one job each: ``config`` ([usrloc] section), ``location`` (bindings per AoR, sans-IO),
``store`` (SQLite write-through), ``redis_store`` (a table shared by several nodes through
Redis, on :mod:`kamrouter.redis_mirror`), ``rpc`` (ul.* methods), ``module`` (wiring: timer,
stats).
"""
from kamrouter.modules.usrloc.module import UsrlocModule

__all__ = ["UsrlocModule"]
