"""The router's own RPC methods, with Kamailio's names and result shapes (kamailio.md §6.3).

``register_core_methods(registry, router)`` registers ``core.*``, ``corex.*``, ``system.*``,
``stats.*`` and ``tm.stats``, plus the ``shmem:`` gauges (the process's real memory, under
the group name Kamailio uses). ``router`` provides ``stats``, ``started_at``, ``sockets`` and
``settings``; the methods about TCP and modules also read ``transports`` and ``modules``.
Every method here is synchronous and quick: they run inline on the event loop.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import trio

from kamrouter import __version__
from kamrouter.pipeline.addressing import split_alias
from kamrouter.net import Endpoint
from kamrouter.rpc.procinfo import memory
from kamrouter.rpc.registry import MethodRegistry, RpcError
from kamrouter.stats import Stat, StatsRegistry

#: Python level of Kamailio's NOTICE (between INFO and WARNING).
NOTICE = 25
#: Kamailio's numeric log levels (``debug=`` in kamailio.cfg) and their Python equivalents.
KAMAILIO_LEVELS: dict[int, int] = {
    3: logging.DEBUG, 2: logging.INFO, 1: NOTICE, 0: logging.WARNING, -1: logging.ERROR,
    -2: logging.CRITICAL, -3: logging.CRITICAL, -4: logging.CRITICAL, -5: logging.CRITICAL,
}
LEVEL_NAMES: dict[str, int] = {
    "debug": 3, "info": 2, "notice": 1, "warning": 0, "warn": 0, "error": -1, "err": -1,
    "critical": -2, "crit": -2, "bug": -4, "alert": -5,
}
_NAME_OF_LEVEL = {3: "debug", 2: "info", 1: "notice", 0: "warning", -1: "error"}
#: Divisors of ``core.shmmem [unit]``.
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
ROUTER_LOGGER = "kamrouter"
#: What every router has, listed first by ``core.modules`` (the script APIs of the core).
BUILTIN_MODULES = ("tm", "sl", "rr", "maxfwd", "sanity", "corex", "jsonrpcs")


class Router(Protocol):
    """What the core methods read from the router."""

    stats: StatsRegistry
    started_at: float
    settings: Any

    @property
    def sockets(self) -> list[Endpoint]: ...


def register_core_methods(registry: MethodRegistry, router: Router) -> None:
    """Register the core RPC methods and the ``shmem:`` gauges."""
    core = CoreMethods(router, registry)
    for name, func in core.methods().items():
        registry.register(name, func)
    for name, read, per_process in (
        ("total_size", lambda: memory().total, False),  # the machine's
        ("used_size", lambda: memory().rss, True),
        ("real_used_size", lambda: memory().rss, True),
        ("max_used_size", lambda: memory().peak_rss, True),
        ("free_size", lambda: memory().free, False),
    ):
        router.stats.gauge("shmem", name, read, per_process=per_process)


def kamailio_level(python_level: int) -> int:
    """The Kamailio number of a Python logging level (rounded towards more verbose)."""
    for number in (3, 2, 1, 0, -1):
        if python_level <= KAMAILIO_LEVELS[number]:
            return number
    return -2


class CoreMethods:
    def __init__(self, router: Router, registry: MethodRegistry) -> None:
        self.router = router
        self.registry = registry

    def methods(self) -> dict[str, Callable[..., Any]]:
        return {
            "core.version": self.version, "core.info": self.info, "core.uptime": self.uptime,
            "core.psx": self.psx, "core.shmmem": self.shmmem, "core.echo": self.echo,
            "core.modules": self.modules, "core.tcp_info": self.tcp_info,
            "core.tcp_list": self.tcp_list, "core.tcp_options": self.tcp_options,
            "corex.list_sockets": self.list_sockets, "corex.debug": self.debug,
            "corex.list_aliases": self.list_aliases,
            "system.listMethods": self.list_methods, "system.methodHelp": self.method_help,
            "system.methodSignature": self.method_signature,
            "stats.get_statistics": self.get_statistics, "stats.fetch": self.fetch,
            "stats.fetchn": self.fetchn, "stats.reset_statistics": self.reset_statistics,
            "stats.clear_statistics": self.clear_statistics, "tm.stats": self.tm_stats,
        }

    # -- core ----------------------------------------------------------------------------

    def version(self) -> str:
        """Returns the version string of the server."""
        return f"kamrouter {__version__} ({platform.machine()}/{sys.platform})"

    def info(self) -> dict[str, Any]:
        """Returns the version, build and runtime details of the server."""
        return {
            "version": f"kamrouter {__version__}",
            "id": __version__,
            "compiler": f"{platform.python_implementation()} {platform.python_version()}",
            "compiled": " ".join(platform.python_build()[1:]),
            "flags": f"trio {trio.__version__}",
            "pid": os.getpid(),
        }

    def uptime(self) -> dict[str, Any]:
        """Returns the current time, the start time and the uptime in seconds."""
        now = time.time()
        return {"now": time.ctime(now), "up_since": time.ctime(self.router.started_at),
                "uptime": int(now - self.router.started_at)}

    def psx(self) -> list[dict[str, Any]]:
        """Returns the detailed description of running processes (and the router's tasks).

        kamrouter is one process; its concurrent activities are trio tasks, listed after the
        process with the same PID. Identical tasks (e.g. one per RPC client) are counted.
        """
        pid = os.getpid()
        entries = [{"IDX": 0, "PID": pid, "DSC": "main process - trio event loop"}]
        counts: dict[str, int] = {}
        root = trio.lowlevel.current_root_task()
        assert root is not None  # an RPC method runs inside trio
        for name in _task_names(root):
            counts[name] = counts.get(name, 0) + 1
        for idx, (name, count) in enumerate(counts.items(), start=1):
            entries.append({"IDX": idx, "PID": pid,
                            "DSC": f"task {name}" + (f" (x{count})" if count > 1 else "")})
        return entries

    def shmmem(self, unit: str = "b") -> dict[str, int]:
        """Returns the memory usage of the router process (unit: b, k, m or g).

        kamrouter has no shared-memory pool: ``used`` and ``real_used`` are the resident set,
        ``max_used`` its peak, ``total`` the memory limit (cgroup) or the machine's RAM.
        """
        divisor = _UNITS.get(unit.lower())
        if divisor is None:
            raise RpcError(400, f"unit: expected one of b, k, m, g, got {unit!r}")
        mem = memory()
        values = {"total": mem.total, "free": mem.free, "used": mem.rss,
                  "real_used": mem.rss, "max_used": mem.peak_rss, "virtual": mem.virtual}
        return {key: value // divisor for key, value in values.items()}

    def echo(self, *params: Any) -> list[Any]:
        """Returns back its parameters."""
        return list(params)

    def modules(self) -> list[str]:
        """Lists the loaded modules (the built-in script APIs, then the configured ones)."""
        return [*BUILTIN_MODULES, *getattr(self.router, "modules", {})]

    def _tcp(self) -> Any:
        transports = getattr(self.router, "transports", None)
        return getattr(transports, "tcp", None)

    def tcp_info(self) -> dict[str, int]:
        """Returns a summary of the TCP connections (kamrouter has no TLS: its counts are 0)."""
        tcp = self._tcp()
        table = tcp.connection_table() if tcp is not None else []
        return {"readers": 1 if tcp is not None else 0,
                "max_connections": self.router.settings.tcp.max_connections,
                "max_tls_connections": 0, "opened_connections": len(table),
                "opened_tls_connections": 0,
                "write_queued_bytes": sum(conn.queued_bytes for conn in table)}

    def tcp_list(self) -> list[dict[str, Any]]:
        """Lists the open TCP connections: src is the peer, dst this router's socket;
        timeout is the seconds left before an idle connection is closed."""
        tcp = self._tcp()
        if tcp is None:
            return []
        lifetime = tcp.config.connection_lifetime
        return [{"id": conn.id, "type": "TCP",
                 "state": "CONN_EOF" if conn.closing else "CONN_OK",
                 "timeout": max(0, int(lifetime - conn.idle)), "lifetime": lifetime,
                 "ref_count": 1, "src_ip": conn.remote.host, "src_port": conn.remote.port,
                 "dst_ip": conn.local.host, "dst_port": conn.local.port}
                for conn in tcp.connection_table()]

    def tcp_options(self) -> dict[str, Any]:
        """Returns the TCP settings ([tcp] section), under Kamailio's names."""
        config = self.router.settings.tcp
        return {"connect_timeout": config.connect_timeout,
                "connection_lifetime": config.connection_lifetime,
                "max_connections(soft)": config.max_connections,
                "max_tls_connections(soft)": 0}

    # -- corex ---------------------------------------------------------------------------

    def list_aliases(self) -> list[dict[str, Any]]:
        """Lists the host aliases ([core] alias); PORT 0 is any port."""
        return [{"PROTO": "*", "ADDR": host, "PORT": port or 0}
                for host, port in map(split_alias, self.router.settings.core.alias)]

    def list_sockets(self) -> list[dict[str, Any]]:
        """Lists the listening SIP sockets."""
        return [{"PROTO": endpoint.proto, "NAME": endpoint.host,
                 "ADDRLIST": {"ADDR": endpoint.host}, "PORT": str(endpoint.port),
                 "MCAST": "no", "MHOMED": "no", "VIRTUAL": "no", "SOCKNAME": "-",
                 "ADVERTISE": "-"} for endpoint in self.router.sockets]

    def debug(self, level: int | str | None = None) -> dict[str, Any]:
        """Gets or sets the log level: Kamailio's number (-5..3) or a name (debug, info,
        notice, warning, error, critical)."""
        logger = logging.getLogger(ROUTER_LOGGER)
        old = kamailio_level(logger.getEffectiveLevel())
        if level is None:
            return {"debug": old, "level": _NAME_OF_LEVEL.get(old, "critical")}
        new = _parse_level(level)
        logger.setLevel(KAMAILIO_LEVELS[new])
        return {"old": old, "new": new, "level": _NAME_OF_LEVEL.get(new, "critical")}

    # -- system --------------------------------------------------------------------------

    def list_methods(self) -> list[str]:
        """Lists the RPC methods of this server."""
        return self.registry.names()

    def method_help(self, method: str) -> str:
        """Returns the help text of an RPC method."""
        return self._method(method).help

    def method_signature(self, method: str) -> str:
        """Returns how an RPC method is called, e.g. ``htable.get(table, key)``."""
        return self._method(method).usage

    def _method(self, name: str) -> Any:
        found = self.registry.get(name)
        if found is None:
            raise RpcError(400, "command not found")
        return found

    # -- stats ---------------------------------------------------------------------------

    def get_statistics(self, *selectors: str) -> list[str]:
        """Returns statistics as "group:name = value" lines.

        Selectors: all, group: (a whole group), group:name, or a bare name; default all.
        """
        return [f"{s.group}:{s.name} = {s.value}" for s in self._select(selectors)]

    def fetch(self, *selectors: str) -> dict[str, str]:
        """Returns statistics as an object {"group.name": "value"}, values as strings.

        Selectors: all, group: (a whole group), group:name or group.name, or a bare name.
        """
        return {f"{s.group}.{s.name}": str(s.value) for s in self._select(selectors)}

    def fetchn(self, *selectors: str) -> dict[str, int | float]:
        """Returns statistics as an object {"group.name": value}, values as numbers."""
        return {f"{s.group}.{s.name}": s.value for s in self._select(selectors)}

    def reset_statistics(self, selector: str, *more: str) -> dict[str, Any]:
        """Resets the selected counters to zero (gauges show live state and stay)."""
        for stat in self._select((selector, *more)):
            stat.reset()
        return {}

    def clear_statistics(self, selector: str, *more: str) -> dict[str, int | float]:
        """Returns the selected statistics, then resets the counters among them."""
        selected = self._select((selector, *more))
        values = {f"{s.group}.{s.name}": s.value for s in selected}
        for stat in selected:
            stat.reset()
        return values

    def _select(self, selectors: tuple[str, ...]) -> list[Stat]:
        """The statistics matching any selector, each once, grouped by group (groups in
        registration order, statistics in registration order within a group)."""
        chosen: dict[tuple[str, str], Stat] = {}
        for selector in selectors or ("all",):
            for stat in self.router.stats.select(selector):
                chosen.setdefault((stat.group, stat.name), stat)
        group_rank = {group: rank for rank, group in enumerate(self.router.stats.groups())}
        return sorted(chosen.values(), key=lambda stat: group_rank[stat.group])

    # -- tm ------------------------------------------------------------------------------

    def tm_stats(self) -> dict[str, int]:
        """Returns the transaction statistics (from the tmx group)."""
        def tmx(name: str) -> int:
            stat = self.router.stats.get("tmx", name)
            return int(stat.value) if stat is not None else 0

        current, active = tmx("inuse_transactions"), tmx("active_transactions")
        total = tmx("UAS_transactions") + tmx("UAC_transactions")
        return {
            "current": current, "waiting": max(current - active, 0), "total": total,
            "total_local": tmx("UAC_transactions"), "rpl_received": tmx("rpl_received"),
            "rpl_generated": tmx("rpl_generated"), "rpl_sent": tmx("rpl_sent"),
            "6xx": tmx("6xx_transactions"), "5xx": tmx("5xx_transactions"),
            "4xx": tmx("4xx_transactions"), "3xx": tmx("3xx_transactions"),
            "2xx": tmx("2xx_transactions"), "created": total, "freed": max(total - current, 0),
            "delayed_free": 0,
        }


def _parse_level(level: int | str) -> int:
    number: int | None = level if isinstance(level, int) else None
    if isinstance(level, str):
        text = level.strip().lower()
        number = LEVEL_NAMES.get(text)
        if number is None and text.lstrip("-").isdigit():
            number = int(text)
    if number not in KAMAILIO_LEVELS:
        raise RpcError(400, f"level: expected -5..3 or one of {', '.join(LEVEL_NAMES)}, "
                            f"got {level!r}")
    return number


def _task_names(task: trio.lowlevel.Task) -> Iterator[str]:
    """Names of ``task``'s descendants, depth first, without trio's own tasks (``<...>``
    system tasks and ``trio.*`` helpers such as the listener loops)."""
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            if not child.name.startswith(("<", "trio.")):
                yield child.name
            yield from _task_names(child)
