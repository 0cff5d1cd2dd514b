"""The ``[auth]`` config section: digest (Kamailio auth) and the subscriber table (auth_db)."""
from __future__ import annotations

from dataclasses import dataclass, field

from kamrouter.modules.auth.digest import ALGORITHMS

QOPS = ("", "auth", "auth-int", "auth,auth-int")


@dataclass
class AuthConfig:
    #: Key signing the nonces (HMAC-SHA256). Empty: a random one per start, so nonces handed
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

    def validate(self) -> list[str]:
        problems = []
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
        return problems
