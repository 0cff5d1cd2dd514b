"""The auth module: nonces, the subscriber table (SQLite or TOML) or the routing API as the
source of HA1 values, subscriber.* (and with the API auth.cache_list, auth.cache_flush,
auth.api_status) RPC methods for kamcli, and ``auth:`` statistics."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.auth.api import AuthApi, AuthResult
from kamrouter.modules.auth.apisource import ApiCredentials
from kamrouter.modules.auth.config import AuthConfig
from kamrouter.modules.auth.digest import is_hex
from kamrouter.modules.auth.nonce import Nonces
from kamrouter.modules.auth.subscribers import SqliteSubscribers, Subscriber, TomlSubscribers
from kamrouter.modules.base import Module, RouterServices
from kamrouter.rpc.registry import RpcError

_RESULT_STATS = {AuthResult.AUTHENTICATED: "authenticated",
                 AuthResult.INVALID_PASSWORD: "invalid_password",
                 AuthResult.USER_UNKNOWN: "user_unknown", AuthResult.NONCE_EXPIRED: "stale",
                 AuthResult.NONCE_REUSED: "nonce_reused", AuthResult.ERROR: "errors",
                 AuthResult.AUTH_USER_MISMATCH: "user_mismatch"}


class AuthModule(Module):
    name = "auth"
    Config = AuthConfig

    @classmethod
    def requires(cls, config: AuthConfig) -> tuple[str, ...]:
        return ("http_client",) if config.credentials == "api" else ()

    def __init__(self, router: RouterServices, config: AuthConfig) -> None:
        super().__init__(router, config)
        self.clock = time.time  # nonces carry their issue time (valid across processes)
        self.nonces = Nonces(config.secret.encode(), config.nonce_expire,
                             config.nonce_count_cache, issuer=router.worker_index or 0)
        base_dir = Path(getattr(getattr(router, "settings", None), "base_dir", None) or ".")
        self.subscribers: SqliteSubscribers | TomlSubscribers
        try:
            if config.toml_file:
                self.subscribers = TomlSubscribers(_resolve(base_dir, config.toml_file))
            else:
                self.subscribers = SqliteSubscribers(_resolve(base_dir, config.db_file))
        except Exception as exc:  # noqa: BLE001 - a broken file must name itself at start
            key = "toml_file" if config.toml_file else "db_file"
            raise ConfigError([f"auth.{key}: cannot load: {exc}"]) from None
        stats = router.stats
        self.challenges = stats.counter("auth", "challenges")
        self.results = {code: stats.counter("auth", name) for code, name in _RESULT_STATS.items()}
        self.api_source = ApiCredentials(router, config) if config.credentials == "api" \
            else None
        self._api = AuthApi(self)
        for name in ("add", "passwd", "rm", "list"):
            router.rpc.register(f"subscriber.{name}", getattr(self, f"rpc_{name}"))
        if self.api_source is not None:
            for name in ("cache_list", "cache_flush", "api_status"):
                router.rpc.register(f"auth.{name}", getattr(self, f"rpc_{name}"))

    def api(self) -> AuthApi:
        return self._api

    async def start(self, nursery: trio.Nursery) -> None:
        if self.api_source is not None:
            self.api_source.start(self.router.module("http_client").api())  # type: ignore[arg-type]

    async def stop(self) -> None:
        if isinstance(self.subscribers, SqliteSubscribers):
            self.subscribers.close()

    # -- RPC (kamcli subscriber) --------------------------------------------------------------
    def _writable(self) -> SqliteSubscribers:
        if not isinstance(self.subscribers, SqliteSubscribers):
            raise RpcError(500, f"Subscribers are read from {self.config.toml_file} "
                                "(read-only); use db_file for kamcli subscriber")
        return self.subscribers

    def rpc_add(self, username: str, domain: str, ha1: str, ha1b: str,
                ha1_sha256: str) -> str:
        """Add or replace a subscriber by its HA1 values (kamcli computes them from the
        password, which never reaches the router): username domain ha1 ha1b ha1_sha256."""
        if not username or "@" in username or ":" in username or not domain:
            raise RpcError(400, "Invalid username or domain")
        for name, value, size in (("ha1", ha1, 32), ("ha1b", ha1b, 32),
                                  ("ha1_sha256", ha1_sha256, 64)):
            if not is_hex(value, size):
                raise RpcError(400, f"Invalid {name}: expected {size} lower-case hex digits")
        new = self._writable().put(Subscriber(username, domain, ha1, ha1b, ha1_sha256))
        return "Ok. Subscriber added." if new else "Ok. Subscriber updated."

    def rpc_passwd(self, username: str, domain: str, ha1: str, ha1b: str,
                   ha1_sha256: str) -> str:
        """Change the HA1 values of an existing subscriber: username domain ha1 ha1b
        ha1_sha256."""
        if self._writable().find(username, domain) is None:
            raise RpcError(404, "Subscriber not found")
        self.rpc_add(username, domain, ha1, ha1b, ha1_sha256)
        return "Ok. Password changed."

    def rpc_rm(self, username: str, domain: str) -> str:
        """Remove a subscriber: username domain."""
        if not self._writable().remove(username, domain):
            raise RpcError(404, "Subscriber not found")
        return "Ok. Subscriber removed."

    def rpc_list(self, domain: str = "") -> list[dict[str, Any]]:
        """List subscribers (of one domain when given); HA1 values are not shown."""
        return [{"username": s.username, "domain": s.domain,
                 "algorithms": "MD5,SHA-256" if s.ha1_sha256 else "MD5"}
                for s in self.subscribers.all() if not domain or s.domain == domain]

    # -- RPC (the routing API's cache) --------------------------------------------------------
    def rpc_cache_list(self) -> list[dict[str, Any]]:
        """The cached answers of the routing API (HA1 values are not shown)."""
        assert self.api_source is not None
        now = self.router.clock()
        return [{"username": user, "realm": realm, "found": entry.subscriber is not None,
                 "algorithms": ",".join(a for a, value in (
                     ("MD5", entry.subscriber.ha1), ("SHA-256", entry.subscriber.ha1_sha256))
                     if value) if entry.subscriber is not None else "",
                 "expires_in": round(entry.expires - now, 1)}
                for (user, realm), entry in self.api_source.cache.entries()]

    def rpc_cache_flush(self, username: str = "", realm: str = "") -> str:
        """Forget the cached answers (of one username and realm when given), so that the
        next request asks the routing API."""
        assert self.api_source is not None
        if bool(username) != bool(realm):
            raise RpcError(400, "Give both username and realm, or neither")
        removed = self.api_source.flush((username, realm) if username else None)
        return f"Ok. {removed} cached entries removed."

    def rpc_api_status(self) -> dict[str, Any]:
        """The credentials API: transport, target, circuit state, last error, cache size."""
        assert self.api_source is not None
        return self.api_source.status()


def _resolve(base_dir: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base_dir / candidate
