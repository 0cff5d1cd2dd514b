"""The ``[auth]`` config section: digest (Kamailio auth), the subscriber table (auth_db) or
the routing API as the source of HA1 values."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kamrouter.config import Range, range_problems
from kamrouter.modules.api.config import ReplyFallback, parse_on_error
from kamrouter.modules.auth.digest import ALGORITHMS

QOPS = ("", "auth", "auth-int", "auth,auth-int")


@dataclass
class AuthConfig:
    #: Key signing the nonces (keyed BLAKE2s). Empty: a random one per start, so nonces handed
    #: out before a restart get ``stale=true`` and the phones simply re-authenticate. Set it
    #: when several routers must accept each other's nonces.
    secret: str = ""
    #: Seconds a nonce is valid (Kamailio nonce_expire); older ones are answered stale.
    nonce_expire: int = 300
    #: Challenges offered, one header each with the same nonce, in this order. RFC 7616
    #: has the preferred first and clients take the first they support; MD5 leads by
    #: default because MD5-only clients that read only the first challenge (sipp 3.6, older
    #: phones) fail on a SHA-256 one. ["SHA-256", "MD5"] prefers SHA-256.
    algorithms: list[str] = field(default_factory=lambda: ["MD5", "SHA-256"])
    #: qop offered: "auth", "auth-int", both, or "" (RFC 2069 style, not recommended).
    qop: str = "auth"
    #: Refuse a nonce-count that is not higher than the last one seen for the nonce
    #: (replays). ``nonce_count_cache`` bounds the nonces remembered; a nonce older than the
    #: forgotten ones is answered stale (re-challenged), never accepted blindly.
    nonce_count: bool = True
    nonce_count_cache: int = 100_000
    #: Subscribers (username, domain, ha1, ha1b, ha1_sha256 — HA1 values only, never
    #: passwords): a SQLite file managed with ``kamcli subscriber``, or a TOML file
    #: (``["alice@example.com"] ha1 = "..."  ha1_sha256 = "..."``) read at start.
    db_file: str = "subscriber.sqlite"
    toml_file: str = ""
    #: Match the subscriber by username and domain (= realm), not username alone
    #: (Kamailio auth_db use_domain).
    use_domain: bool = True
    #: Where auth_check finds HA1 values: the subscriber table above, or the routing API
    #: (``api_*`` keys; the script awaits ``auth.fetch_credentials`` before auth_check).
    credentials: Literal["subscriber", "api"] = "subscriber"
    #: How the API is asked: HTTP POST of ``{"username", "realm"}`` (http) or a JSON-RPC 2.0
    #: call of ``api_rpc_method`` with those named params (jsonrpc). Either answers
    #: ``{"ha1": <32 hex>, "ha1_sha256": <64 hex>}`` (one of them may be missing), or ``{}``
    #: for an unknown user.
    api_transport: Literal["http", "jsonrpc"] = "http"
    api_url: str = ""
    api_rpc_method: str = "auth.ha1"
    #: Seconds to wait for an answer before ``api_on_error`` applies.
    api_timeout: float = 2.0
    #: Seconds a found user's HA1 values, and an unknown user, are served from the cache.
    api_cache_ttl: float = 300.0
    api_negative_ttl: float = 30.0
    #: Entries kept, found and unknown users apart: random usernames can evict only other
    #: unknown ones, and memory stays bounded whatever is sent.
    api_cache_size: int = 100_000
    api_negative_cache_size: int = 10_000
    #: The answer when the API cannot tell (timeout, refused, malformed answer, circuit
    #: open), as [api] on_error: ``reply <code> [reason]``.
    api_on_error: str = "reply 503 Service Unavailable"
    #: Seconds past ``api_cache_ttl`` a found user's HA1 may still serve while the API
    #: fails (0: never, as API routing, which keeps nothing, answers on_error at once).
    api_stale_ttl: float = 0.0
    #: The circuit breaker, as [api]'s: consecutive failures that open it, and seconds
    #: before one lookup probes the API again.
    api_breaker_threshold: int = 3
    api_breaker_retry: float = 2.0

    @property
    def api_fallback(self) -> ReplyFallback:
        fallback = parse_on_error(self.api_on_error)
        assert isinstance(fallback, ReplyFallback), "validate() refuses the others"
        return fallback

    def validate(self) -> list[str]:
        problems = []
        if self.credentials == "api" and not self.api_url.startswith(("http://", "https://")):
            problems.append(f"api_url: credentials = 'api' needs an http:// or https:// URL, "
                            f"got {self.api_url!r}")
        try:
            if not isinstance(parse_on_error(self.api_on_error), ReplyFallback):
                problems.append(f"api_on_error: expected 'reply <300-699> [reason]', got "
                                f"{self.api_on_error!r}")
        except ValueError as exc:
            problems.append(f"api_on_error: {exc}")
        if self.nonce_expire < 1:
            problems.append(f"nonce_expire: must be >= 1 second, got {self.nonce_expire}")
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown or not self.algorithms:
            problems.append(f"algorithms: expected some of {', '.join(ALGORITHMS)}, got "
                            f"{self.algorithms}")
        if self.qop not in QOPS:
            problems.append(f"qop: expected one of {QOPS}, got {self.qop!r}")
        if self.nonce_count_cache < 100:
            problems.append(f"nonce_count_cache: must be >= 100, got {self.nonce_count_cache}")
        return problems + range_problems(self, {
            "api_timeout": Range(0.01, 300, "s"), "api_cache_ttl": Range(0, 86400, "s"),
            "api_negative_ttl": Range(0, 86400, "s"), "api_stale_ttl": Range(0, 86400, "s"),
            "api_cache_size": Range(0, 10_000_000), "api_negative_cache_size": Range(0, 10_000_000),
            "api_breaker_threshold": Range(1, 1000), "api_breaker_retry": Range(0.01, 3600, "s")})
