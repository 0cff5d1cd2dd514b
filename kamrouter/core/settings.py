"""The router's own config sections and the whole-file loader.

``load_settings(path)`` returns :class:`Settings`; module sections are kept raw here and
validated by the modules' own ``Config`` dataclasses when the router loads them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kamrouter.config import ConfigError, build_section, read_toml
from kamrouter.core.dns import ip_literal
from kamrouter.net import parse_socket
from kamrouter.rpc.config import RpcConfig
from kamrouter.transport.tcp import TcpConfig

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical"]


@dataclass
class CoreConfig:
    listen: list[str] = field(default_factory=lambda: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"])
    #: Extra host names/addresses that mean "this proxy" in R-URIs and Route headers.
    alias: list[str] = field(default_factory=list)
    log_level: LogLevel = "info"
    max_message_size: int = 65535
    #: Modules to load even without a config section of their own.
    load_modules: list[str] = field(default_factory=list)
    #: Answer a request whose Max-Forwards is missing with this default (RFC 3261: 70).
    max_forwards: int = 70
    #: Resolve next-hop host names with the system resolver (A/AAAA); false: only IP
    #: addresses and ``hosts`` entries (a name that is neither gets 478).
    dns: bool = True
    #: Static host names for next hops, e.g. ``{ "sbc.internal" = "10.1.2.3" }``.
    hosts: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[str]:
        problems = []
        for i, text in enumerate(self.listen):
            try:
                parse_socket(text)
            except ValueError as exc:
                problems.append(f"listen[{i}]: {exc}")
        for name, address in self.hosts.items():
            if ip_literal(str(address)) is None:
                problems.append(f"hosts.{name}: expected an IP address, got {address!r}")
        if not 512 <= self.max_message_size <= 1 << 20:
            problems.append("max_message_size: must be between 512 and 1048576 bytes")
        return problems


@dataclass
class TmConfig:
    #: Final-response timeout of non-INVITE branches, ms (Kamailio ``fr_timer``).
    fr_timer: int = 30000
    #: Final-response timeout of INVITE branches after a provisional reply, ms.
    fr_inv_timer: int = 120000
    t1: int = 500
    t2: int = 4000
    t4: int = 5000
    #: Timer D / wait for ACK retransmissions after a final response (ms; 0 on reliable).
    wait_timer: int = 5000
    #: Send 100 Trying on every new INVITE server transaction.
    auto_100: bool = True
    #: Upper bound of live transactions; new requests above it get 503.
    max_transactions: int = 100000


@dataclass
class RoutingConfig:
    #: Path of the routing script (empty: the embedded default ``etc/routes.py``).
    script: str = ""
    mode: Literal["script", "api"] = "script"


@dataclass
class Settings:
    core: CoreConfig = field(default_factory=CoreConfig)
    tm: TmConfig = field(default_factory=TmConfig)
    tcp: TcpConfig = field(default_factory=TcpConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    #: Raw module sections by name, validated by each module's ``Config``.
    modules: dict[str, Any] = field(default_factory=dict)
    #: Directory that relative paths in the file are resolved against.
    base_dir: Path = field(default_factory=Path.cwd)


_CORE_SECTIONS = {"core": CoreConfig, "tm": TmConfig, "tcp": TcpConfig,
                  "routing": RoutingConfig, "rpc": RpcConfig}


def build_settings(raw: dict[str, Any], known_modules: set[str], base_dir: Path) -> Settings:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    settings = Settings(base_dir=base_dir)
    for key, value in raw.items():
        section_cls = _CORE_SECTIONS.get(key)
        if section_cls is not None:
            if not isinstance(value, dict):
                problems.append(f"{key}: expected a table [{key}]")
                continue
            setattr(settings, key, build_section(section_cls, value, key, problems))
        elif key in known_modules:
            settings.modules[key] = value
        else:
            problems.append(f"{key}: unknown section (known: "
                            f"{', '.join(sorted(set(_CORE_SECTIONS) | known_modules))})")
    if problems:
        raise ConfigError(problems)
    return settings


def load_settings(path: str | Path | None, known_modules: set[str]) -> Settings:
    """Load ``path`` (None: the embedded default, i.e. all defaults)."""
    if path is None:
        return Settings()
    path = Path(path)
    return build_settings(read_toml(path), known_modules, path.resolve().parent)
