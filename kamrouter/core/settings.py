"""The router's own config sections and the whole-file loader.

``load_settings(path)`` returns :class:`Settings`; module sections are kept raw here and
validated by the modules' own ``Config`` dataclasses when the router loads them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kamrouter.config import ConfigError, build_section, read_toml
from kamrouter.core.dns import ip_literal
from kamrouter.net import parse_socket
from kamrouter.sip import HeaderLimits
from kamrouter.transport.tcp import TcpConfig

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical"]


def default_run_dir() -> str:
    """Where control sockets live: ``$XDG_RUNTIME_DIR/kamrouter`` or ``/tmp/kamrouter-$UID``.

    kamcli computes the same path, so both agree with no options at all.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "kamrouter") if base else f"/tmp/kamrouter-{os.getuid()}"


@dataclass
class CoreConfig:
    listen: list[str] = field(default_factory=lambda: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"])
    #: Extra host names/addresses that mean "this proxy" in R-URIs and Route headers.
    alias: list[str] = field(default_factory=list)
    log_level: LogLevel = "info"
    max_message_size: int = 65535
    #: Header lines one message may carry; more is answered 400 (see HeaderLimits).
    max_headers: int = 256
    #: Via values one message may carry (RFC 3261's initial Max-Forwards: 70).
    max_vias: int = 70
    #: Route values one message may carry.
    max_routes: int = 70
    #: Record-Route values one message may carry.
    max_record_routes: int = 70
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
        if not 16 <= self.max_headers <= 4096:
            problems.append(f"max_headers: must be between 16 and 4096, got {self.max_headers}")
        for key in ("max_vias", "max_routes", "max_record_routes"):
            if not 1 <= getattr(self, key) <= 1024:
                problems.append(f"{key}: must be between 1 and 1024, got {getattr(self, key)}")
        return problems

    def header_limits(self) -> HeaderLimits:
        return HeaderLimits(self.max_headers, self.max_vias, self.max_routes,
                            self.max_record_routes)

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
class RpcConfig:
    run_dir: str = field(default_factory=default_run_dir)
    #: Unix stream socket path (``{run_dir}/kamrouter_rpc.sock``), empty string to disable.
    stream_socket: str | None = None
    #: Unix datagram socket, Kamailio jsonrpcs compatible; off unless set.
    dgram_socket: str = ""
    #: FIFO path, Kamailio jsonrpcs compatible; off unless set.
    fifo: str = ""
    fifo_reply_dir: str = "/tmp"
    #: ``host:port`` of the HTTP listener (POST /RPC, GET /metrics); off unless set.
    http: str = ""
    mode: int = 0o660
    user: str = ""
    group: str = ""
    #: Largest accepted request document, bytes (bigger ones get an error, then a close).
    max_request_size: int = 1 << 20
    #: Concurrent stream + HTTP connections; more are refused with an error reply.
    max_clients: int = 64
    #: Seconds a client may take to finish sending a request, or to read its reply.
    client_timeout: float = 10.0
    #: Seconds an idle stream/HTTP connection stays open (kamcli shell reconnects after).
    idle_timeout: float = 300.0

    def validate(self) -> list[str]:
        problems = []
        try:
            self.http_address()
        except ValueError as exc:
            problems.append(f"http: {exc}")
        if not 0 <= self.mode <= 0o777:
            problems.append(f"mode: expected a permission mode like 0o660, got {self.mode:#o}")
        return problems

    def http_address(self) -> tuple[str, int] | None:
        """``"8080"`` → loopback:8080; ``"0.0.0.0:8080"``, ``"[::1]:8080"``; ``""`` → off."""
        if not self.http:
            return None
        host, sep, port_text = self.http.rpartition(":")
        if not sep:
            host = "127.0.0.1"
        host = host.strip("[]")
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536 or (sep and not host):
            raise ValueError(f"expected [host:]port, e.g. 127.0.0.1:8080, got {self.http!r}")
        return host, int(port_text)


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
