"""mtree: Kamailio's in-memory prefix trees (longest-prefix match of a number to a value:
a carrier, a dispatcher set, a price), with one or several values per prefix.

Files, one job each: ``config`` ([[mtree]] section), ``tree`` (the tree and its matching,
sans-IO, flat for memory), ``files`` (CSV/TOML data), ``api`` (script API), ``rpc``
(mtree.* methods), ``module`` (wiring, reload).
"""
from kamrouter.modules.mtree.module import MtreeModule

__all__ = ["MtreeModule"]
