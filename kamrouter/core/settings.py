"""The router's own config sections and the whole-file loader.

``load_settings(path)`` returns :class:`Settings`; module sections are kept raw here and
validated by the modules' own ``Config`` dataclasses when the router loads them.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kamrouter.config import ConfigError, Range, build_section, range_problems, read_toml
from kamrouter.dns import BlocklistConfig, DnsConfig, ip_literal
from kamrouter.net import parse_socket
from kamrouter.rpc.config import RpcConfig
from kamrouter.sip import HeaderLimits
from kamrouter.tm.params import TmParams
from kamrouter.transport.tcp import TcpConfig
from kamrouter.transport.tls import TlsConfig
from kamrouter.transport.ws import WebsocketConfig

LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical"]


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
    #: Worker processes sharing the SIP listeners (SO_REUSEPORT), started and restarted by
    #: a supervisor that owns the control socket; 1 is the single process with no
    #: supervisor; 0 or "auto" (the default): one per CPU, or one process for a config
    #: whose state the workers do not share (README "Worker processes").
    workers: int | Literal["auto"] = "auto"

    def validate(self) -> list[str]:
        problems = [f"listen[{i}]: {problem}" for i, text in enumerate(self.listen)
                    if (problem := listen_problem(text)) is not None]
        if isinstance(self.workers, int) and not 0 <= self.workers <= MAX_WORKERS:
            problems.append(f"workers: must be between 1 and {MAX_WORKERS} (0 or \"auto\": "
                            f"one per CPU), got {self.workers}")
        for name, address in self.hosts.items():
            if ip_literal(str(address)) is None:
                problems.append(f"hosts.{name}: expected an IP address, got {address!r}")
        return problems + range_problems(self, CORE_RANGES)

    def is_auto(self) -> bool:
        return self.workers == "auto" or self.workers == 0

    def worker_count(self) -> int:
        """How many worker processes ``workers`` asks for (1: no supervisor)."""
        if self.is_auto():
            return min(os.cpu_count() or 1, MAX_WORKERS)
        return int(self.workers)

    def header_limits(self) -> HeaderLimits:
        return HeaderLimits(self.max_headers, self.max_vias, self.max_routes,
                            self.max_record_routes)


#: More workers than this is a typo, not a machine (each costs a Python process, ~40 MB).
MAX_WORKERS = 256

CORE_RANGES = {"max_message_size": Range(512, 1 << 20, "bytes"),
               "max_forwards": Range(1, 255),
               "max_headers": Range(16, 4096),
               "max_vias": Range(1, 1024),
               "max_routes": Range(1, 1024),
               "max_record_routes": Range(1, 1024)}


#: RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, the last
#: one not all digits (so ``1.2.3`` is a malformed address, not a name).
_HOST_NAME = re.compile(r"(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)*(?!-)(?=.*[A-Za-z])"
                        r"[A-Za-z0-9-]{1,63}(?<!-)\.?")


def listen_problem(text: str) -> str | None:
    """What is wrong with a ``listen`` socket, or None: its syntax, and that its host is an
    address of this machine (or a name that resolves), so a typo fails here, by key, and
    not as a bare bind error at start-up."""
    try:
        endpoint = parse_socket(text)
    except ValueError as exc:
        return str(exc)
    host = endpoint.host
    if ip_literal(host) is None and not _HOST_NAME.fullmatch(host):
        return f"{text!r}: host {host!r} is neither an IP address nor a host name"
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"{text!r}: host {host!r} does not resolve ({exc})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address[0], 0))  # port 0: only asks whether the address is ours
        except OSError as exc:
            return f"{text!r}: {host!r} is not an address of this host ({exc.strerror})"
    return None


#: tm's defaults, spelled once (in seconds, in :class:`~kamrouter.tm.params.TmParams`).
_TM = TmParams()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class TmConfig:
    """``[tm]``: timers in ms, as Kamailio's tm module parameters."""

    #: Final-response timeout of non-INVITE branches, ms (Kamailio ``fr_timer``).
    fr_timer: int = _ms(_TM.fr_timer)
    #: Final-response timeout of INVITE branches after a provisional reply, ms.
    fr_inv_timer: int = _ms(_TM.fr_inv_timer)
    t1: int = _ms(_TM.t1)
    t2: int = _ms(_TM.t2)
    t4: int = _ms(_TM.t4)
    #: Linger after a final response to absorb retransmissions, ms (Kamailio ``wt_timer``).
    wait_timer: int = _ms(_TM.wait_timer)
    #: Send 100 Trying on every new INVITE server transaction.
    auto_100: bool = _TM.auto_100
    #: Upper bound of live transactions; new requests above it get 503.
    max_transactions: int = _TM.max_transactions

    def params(self) -> TmParams:
        """The values tm runs with (seconds)."""
        return TmParams(t1=self.t1 / 1000, t2=self.t2 / 1000, t4=self.t4 / 1000,
                        fr_timer=self.fr_timer / 1000, fr_inv_timer=self.fr_inv_timer / 1000,
                        wait_timer=self.wait_timer / 1000, auto_100=self.auto_100,
                        max_transactions=self.max_transactions)

    def validate(self) -> list[str]:
        problems = range_problems(self, TM_RANGES)
        if self.t1 > self.t2:  # retransmissions start at t1 and double up to t2
            problems.append(f"t2: must be at least t1 ({self.t1} ms), got {self.t2}")
        return problems


#: A t1 of 0 retransmits without pause (one INVITE: 188,629 copies in 3 s): bounded from below.
TM_RANGES = {"t1": Range(50, 60000, "ms"), "t2": Range(50, 600000, "ms"),
             "t4": Range(50, 600000, "ms"), "fr_timer": Range(100, 3600000, "ms"),
             "fr_inv_timer": Range(100, 3600000, "ms"), "wait_timer": Range(0, 600000, "ms"),
             "max_transactions": Range(1, 10_000_000)}


@dataclass
class RoutingConfig:
    #: Path of the routing script (empty: the embedded default ``etc/routes.py``).
    script: str = ""
    #: ``script`` (run ``script``), or the name of a module that provides a routing mode
    #: (its own routing script, e.g. ``api``).
    mode: str = "script"
    #: A synchronous hook (request/reply/branch/failure route, event handler) that holds the
    #: event loop longer than this is logged and counted (``script:slow_hooks``); 0: off.
    slow_hook_ms: int = 100

    def validate(self) -> list[str]:
        return range_problems(self, {"slow_hook_ms": Range(1, 60000, "ms", off=0)})


@dataclass
class Settings:
    core: CoreConfig = field(default_factory=CoreConfig)
    tm: TmConfig = field(default_factory=TmConfig)
    tcp: TcpConfig = field(default_factory=TcpConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    websocket: WebsocketConfig = field(default_factory=WebsocketConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    dst_blocklist: BlocklistConfig = field(default_factory=BlocklistConfig)
    #: Raw module sections by name, validated by each module's ``Config``.
    modules: dict[str, Any] = field(default_factory=dict)
    #: Directory that relative paths in the file are resolved against.
    base_dir: Path = field(default_factory=Path.cwd)

    def operator_script(self) -> Path | None:
        """The operator's routing script (None: a routing mode's or the embedded default,
        code of the package)."""
        if self.routing.mode != "script" or not self.routing.script:
            return None
        path = Path(self.routing.script)
        return path if path.is_absolute() else self.base_dir / path


_CORE_SECTIONS = {"core": CoreConfig, "tm": TmConfig, "tcp": TcpConfig,
                  "routing": RoutingConfig, "rpc": RpcConfig, "tls": TlsConfig,
                  "websocket": WebsocketConfig, "dns": DnsConfig,
                  "dst_blocklist": BlocklistConfig}


def build_settings(raw: dict[str, Any], known_modules: set[str], base_dir: Path) -> Settings:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    settings = collect_settings(raw, known_modules, base_dir, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def collect_settings(raw: dict[str, Any], known_modules: set[str], base_dir: Path,
                     problems: list[str]) -> Settings:
    """Settings from a parsed TOML document, appending every problem to ``problems``; a
    key with a problem keeps its default (so ``--check`` can go on to the modules)."""
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
    return settings


def load_settings(path: str | Path | None, known_modules: set[str]) -> Settings:
    """Load ``path`` (None: the embedded default, i.e. all defaults)."""
    if path is None:
        return Settings()
    path = Path(path)
    return build_settings(read_toml(path), known_modules, path.resolve().parent)
