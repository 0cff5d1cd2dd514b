"""auth: digest authentication of requests against a subscriber table or the routing API
(Kamailio auth and auth_db in one module).

Files: ``config`` ([auth] section), ``digest`` (RFC 7616 hashes), ``nonce`` (signed nonces,
nonce-count replay check), ``subscribers`` (SQLite / TOML HA1 store), ``apisource`` and
``cache`` (HA1 values from the routing API, cached), ``api`` (script API), ``module``
(wiring, subscriber.* and auth.* RPC, stats).
"""
from kamrouter.modules.auth.module import AuthModule

__all__ = ["AuthModule"]
