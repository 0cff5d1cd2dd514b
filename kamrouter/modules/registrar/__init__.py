"""registrar: REGISTER handling and lookups of registered users (Kamailio's registrar).

Files: ``config`` ([registrar] section), ``save`` (a REGISTER applied to a table, sans-IO),
``api`` (script API: save, lookup, serial forking by q), ``module`` (wiring). The tables are
the usrloc module's.
"""
from kamrouter.modules.registrar.module import RegistrarModule

__all__ = ["RegistrarModule"]
