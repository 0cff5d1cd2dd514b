"""The router process: settings → transports, tm, the proxy pipeline, script, modules, RPC;
lifecycle and signals (wiring only: the decisions are in :mod:`kamrouter.pipeline`).

:class:`Router` is also what modules see as their ``router`` (see
:class:`kamrouter.modules.base.RouterServices`).
"""
from __future__ import annotations

import base64
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import trio

from kamrouter.config import ConfigError, build_section
from kamrouter.dns import Blocklist
from kamrouter.dns.config import parse_server
from kamrouter.dns.destinations import Destinations
from kamrouter.dns.resolver import Resolver
from kamrouter.rpc.dns_methods import register_dns
from kamrouter.core.settings import Settings
from kamrouter.core.supervisor import worker_socket_name
from kamrouter.core.worker_stats import register_worker_methods
from kamrouter.guard import HOOK_ERRORS, InputGuard
from kamrouter.modules.base import Module
from kamrouter.modules.bus import StateBus
from kamrouter.net import Endpoint, OwnEndpoints, parse_socket
from kamrouter.pipeline.addressing import Identity
from kamrouter.pipeline.handoff import branch_mark
from kamrouter.pipeline.proxy import Proxy
from kamrouter.rpc import MethodRegistry, forward
from kamrouter.rpc.core_methods import register_core_methods
from kamrouter.rpc.server import serve_rpc
from kamrouter.rpc.tls_methods import register_tls_methods
from kamrouter.rpc.ws_methods import register_ws_methods
from kamrouter.script.builtins import builtin_apis
from kamrouter.script.loader import Script, ScriptError, load_script, set_apis
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import Response
from kamrouter.stats import StatsRegistry
from kamrouter.core.collector import Collector
from kamrouter.modules.blocklist_bus import BlocklistBus
from kamrouter.timers import Scheduler
from kamrouter.tm import Transaction, TransactionLayer
from kamrouter.transport.shared import WorkerSockets
from kamrouter.transport.tls import TlsContexts

log = logging.getLogger("kamrouter")

#: Timer resolution (seconds): SIP timers are hundreds of ms, so 10 ms late is harmless.
TIMER_TICK = 0.01

#: The embedded default routing script, used when the config names none.
DEFAULT_SCRIPT = Path(__file__).resolve().parent.parent / "default" / "routes.py"

#: Always loaded, with or without a section: the relay policy every shipped script applies
#: (trusted sources, the destination allow list, per-source rate limits).
POLICY_MODULES = ("permissions", "pike")


def available_modules() -> dict[str, Any]:
    """Module name → entry point, for every installed kamrouter module."""
    return {ep.name: ep for ep in entry_points(group="kamrouter.modules")}


def routing_mode_script(mode: str) -> str:
    """The routing script of the module that provides routing mode ``mode``."""
    entry = available_modules().get(mode)
    script = entry.load().routing_script if entry is not None else None
    if script is None:
        raise ConfigError([f"routing.mode: expected 'script' or a module that provides a "
                           f"routing mode, got {mode!r}"])
    return str(script)


def script_path(settings: Settings) -> Path:
    if settings.routing.mode != "script":
        return Path(routing_mode_script(settings.routing.mode))
    return settings.operator_script() or DEFAULT_SCRIPT


def name_resolution(settings: Settings, clock: Callable[[], float]) -> tuple[Resolver, Blocklist]:
    dns, blocked = settings.dns, settings.dst_blocklist
    resolver = Resolver(clock, hosts=settings.core.hosts, lookups=settings.core.dns,
                        servers=[parse_server(text) for text in dns.servers],
                        try_naptr=dns.try_naptr, srv=dns.srv, srv_lb=dns.srv_lb,
                        min_ttl=dns.cache_min_ttl, max_ttl=dns.cache_max_ttl,
                        negative_ttl=dns.negative_ttl, timeout=dns.timeout)
    blocklist = Blocklist(clock, expire=blocked.expire, max_entries=blocked.max_entries,
                          enabled=blocked.enabled)
    return resolver, blocklist


class Router:
    """One kamrouter process."""

    def __init__(self, settings: Settings, worker: WorkerSockets | None = None,
                 script_source: bytes | None = None) -> None:
        """``worker``: run as one of several worker processes on the supervisor's sockets;
        ``script_source``: the routing script's text as the supervisor read it for its
        workers (None: read from the file)."""
        from kamrouter.transport import Transports

        self.settings = settings
        #: Which of several worker processes this is; None when it is the only process.
        self.worker_index = worker.index if worker is not None else None
        self.started_at = time.time()
        self.clock: Callable[[], float] = time.monotonic
        self.stats = StatsRegistry()
        self.rpc = MethodRegistry()
        self.scheduler = Scheduler(self.clock)
        self.collector = Collector(self.scheduler, self.stats)
        self.bus = StateBus(worker.index, settings.core.worker_count(), settings.rpc.run_dir,
                            self.stats, self.ask_worker) if worker is not None else None
        timer_guard = InputGuard("core", self.stats, log, "drops_internal_error_timer")
        # A bug in one timer callback (a probe, an expiry) costs that timer, not the router.
        self.scheduler.on_error = lambda timer, exc: timer_guard.failed(timer.callback, exc)
        self.resolver, self.blocklist = name_resolution(settings, self.clock)
        if self.bus is not None:  # several workers: one blocklist
            BlocklistBus(self.bus, self.blocklist)
        listens = [parse_socket(text) for text in settings.core.listen]
        #: Every address this process listens on; nothing is ever sent there.
        self.own_endpoints = OwnEndpoints()
        tls = TlsContexts(settings.tls, settings.base_dir) \
            if settings.tls.server or any(e.proto in ("tls", "wss") for e in listens) else None
        self.transports = Transports(listens, settings.tcp, settings.core.max_message_size,
                                     self.stats, self.clock, self.own_endpoints, tls,
                                     settings.websocket, worker)
        #: Checks a reply without a transaction must pass to be forwarded statelessly.
        self.stray_reply_checks: list[Callable[[Response, Endpoint], bool]] = []
        core = settings.core
        transports = tuple(dict.fromkeys(endpoint.proto for endpoint in listens))
        self.destinations = Destinations(self.resolver, self.blocklist, transports)
        dns = settings.dns
        mark = branch_mark(worker.index) if worker is not None else ""
        labels = (worker.index, core.worker_count()) if worker is not None else (0, 1)
        self.proxy = Proxy(
            transports=self.transports, resolver=self.resolver,
            destinations=self.destinations, blocklist=self.blocklist,
            failover_max=dns.failover_max if dns.failover else 0,
            blocklist_503=settings.dst_blocklist.on_503, spawn=self.spawn,
            script=lambda: self.script, stats=self.stats,
            tm_factory=lambda hooks: TransactionLayer(
                settings.tm.params(), self.scheduler, self.transports.send, hooks, self.stats,
                mark, labels),
            on_terminated=self.transaction_terminated,
            identity=Identity(self.sockets, core.alias), max_message_size=core.max_message_size,
            limits=core.header_limits(), max_forwards=core.max_forwards,
            slow_hook_ms=settings.routing.slow_hook_ms,
            stray_reply_checks=self.stray_reply_checks, handoff=self.transports.handoff)
        self.tm = self.proxy.tm
        self.modules: dict[str, Module] = {}
        self._transaction_end: list[Callable[[Transaction], None]] = []
        # Every problem at once: modules' and the script's (which loads even when a module
        # failed, a stand-in taking that module's API).
        problems, failed = self._load_modules()
        set_apis({**builtin_apis(self.proxy), **self._module_apis(),
                  **{name: object() for name in failed}})
        try:
            self.script: Script = load_script(script_path(settings), script_source)
        except ScriptError as exc:
            if not problems:
                raise
            problems.append(f"routing.script: {exc}")
        if problems:
            raise ConfigError(problems)
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self.scheduler.on_earlier_deadline = lambda: self._wake.set()
        register_core_methods(self.rpc, self)
        register_dns(self.rpc, self.stats, self.resolver, self.blocklist, transports)
        register_tls_methods(self.rpc, self.transports.tcp)
        register_ws_methods(self.rpc, self.transports.tcp)
        self.rpc.register("core.reload_script", self.rpc_reload_script)
        if worker is not None:  # the supervisor sums the counters of its workers
            register_worker_methods(self.rpc, self.stats)
            self.rpc.register("worker.reload_script", self.rpc_worker_reload_script)
        if self.bus is not None:
            self.bus.register_rpc(self.rpc)

    @property
    def sockets(self) -> list[Endpoint]:
        return self.transports.sockets

    # -- modules ---------------------------------------------------------------------------
    def _load_modules(self) -> tuple[list[str], list[str]]:
        """Load the wanted modules (the policy modules, the config's, ``core.load_modules``
        and the routing mode's), each after the modules it requires; the problems of all of
        them, and the names of those that failed to load."""
        available = available_modules()
        settings = self.settings
        wanted = [(name, "core.load_modules") for name in dict.fromkeys(
            [*POLICY_MODULES, *settings.modules, *settings.core.load_modules])]
        if settings.routing.mode != "script":
            # A routing mode is named after the module that provides it.
            wanted.append((settings.routing.mode, "routing.mode"))
        problems: list[str] = []
        loading: set[str] = set()

        def load(name: str, needed_by: str) -> None:
            if name in self.modules or name in loading:
                return
            entry = available.get(name)
            if entry is None:
                problems.append(f"{needed_by}: no module named {name!r} "
                                f"(installed: {', '.join(sorted(available)) or 'none'})")
                return
            loading.add(name)
            cls: type[Module] = entry.load()
            raw = settings.modules.get(name, [] if cls.config_is_list else {})
            before = len(problems)
            config = self._module_config(cls, name, raw, problems)
            if len(problems) == before:
                for required in cls.requires(config):
                    load(required, f"module {name}")
            # Built even with config problems, so that its files (list files, tables) are
            # checked in the same run; kept only without problems.
            try:
                module = cls(self, config)
            except ConfigError as exc:  # e.g. a list file with bad lines
                problems.extend(exc.problems)
                return
            except Exception:
                if len(problems) == before:
                    raise
                return  # a consequence of the config problems already reported
            if len(problems) == before:
                self.modules[name] = module

        for name, needed_by in wanted:
            load(name, needed_by)
        return list(dict.fromkeys(problems)), [name for name, _ in wanted
                                               if name not in self.modules]

    @staticmethod
    def _module_config(cls: type[Module], name: str, raw: Any, problems: list[str]) -> Any:
        if cls.Config is None:
            return raw
        if cls.config_is_list:
            if not isinstance(raw, list):
                problems.append(f"{name}: expected an array of tables [[{name}]]")
                return []
            configs: list[Any] = [build_section(cls.Config, item, f"{name}[{i}]", problems)
                       for i, item in enumerate(raw)]
            validate_all = getattr(cls.Config, "validate_all", None)
            if validate_all is not None:  # e.g. two [[htable]] with one name
                problems.extend(validate_all(configs))
            return configs
        if not isinstance(raw, dict):
            problems.append(f"{name}: expected a table [{name}]")
            return None
        return build_section(cls.Config, raw, name, problems)

    def _module_apis(self) -> dict[str, object]:
        apis = {}
        for name, module in self.modules.items():
            api = module.api()
            if api is not None:
                apis[name] = api
        return apis

    def module(self, name: str) -> Module:
        return self.modules[name]

    def connected(self, dest: Endpoint) -> bool:
        return self.transports.connected(dest)

    # -- services for modules and scripts -----------------------------------------------------
    def spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``func(*args)`` as a task of the router (async script work, DNS lookups)."""
        assert self._nursery is not None, "the router is not running"
        self._nursery.start_soon(func, *args)

    async def ask_worker(self, index: int, method: str, params: list[Any]) -> Any:
        """``method(params)`` in worker ``index`` of this router, through its own control
        socket; its result, or RpcError (also when that worker is being restarted)."""
        path = os.path.join(self.settings.rpc.run_dir, worker_socket_name(index))
        return await forward.call(path, method, params, self.settings.rpc.client_timeout)

    def emit(self, event: str, **data: Any) -> None:
        """Run the script's handler for a module event, if it has one."""
        handler = self.script.event_handler(event)
        if handler is None:
            return
        try:
            args = (event, data) if handler is self.script.event_hook else (data,)
            result = self.proxy.hooks.timer.call(handler, *args)
            if isinstance(result, Awaitable) and self._nursery is not None:
                self._nursery.start_soon(self._await_event, event, result)
        except HOOK_ERRORS:  # operator code
            log.exception("routing script raised in event handler for %s", event)

    @staticmethod
    async def _await_event(event: str, result: Awaitable[Any]) -> None:
        try:
            await result
        except HOOK_ERRORS:  # operator code
            log.exception("routing script raised in event handler for %s", event)

    def send_request(self, method: str, ruri: str, *, from_uri: str, to_uri: str | None = None,
                     dst_uri: str | None = None, socket: str | None = None,
                     headers: tuple[tuple[str, str], ...] = (), timeout: float | None = None,
                     on_reply: Callable[[int, Response | None], None]) -> None:
        """Originate a request through tm (e.g. an OPTIONS probe); ``on_reply`` gets the
        final status once (408 on timeout, 477/478/503 when it could not be sent)."""
        self.proxy.originate(method, ruri, from_uri=from_uri, to_uri=to_uri, dst_uri=dst_uri,
                             socket=socket, headers=headers, timeout=timeout, on_reply=on_reply)

    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = ()) -> bool:
        """sl.send_reply for modules (registrar's save(), auth challenges)."""
        return self.proxy.send_reply(msg, status, reason, headers)

    def on_transaction_end(self, callback: Callable[[Transaction], None]) -> None:
        """Call ``callback(txn)`` when a transaction is freed (``txn.final_status`` tells how
        it ended, 0 if never answered); for modules that keep per-call state."""
        self._transaction_end.append(callback)

    def check_stray_replies(self, check: Callable[[Response, Endpoint], bool]) -> None:
        """Forward a reply that matches no transaction only if ``check(reply, source)``
        (as every other check) is true; else it is dropped (``core:drop_replies``)."""
        self.stray_reply_checks.append(check)

    def transaction_terminated(self, txn: Transaction) -> None:
        for callback in self._transaction_end:
            try:
                callback(txn)
            except Exception:  # noqa: BLE001 - one module's bug must not stop the others
                log.exception("transaction end hook %r failed", callback)

    # -- script reload --------------------------------------------------------------------------
    def reload_script(self, source: bytes | None = None) -> None:
        """Load the routing script again (from ``source``: its text as the supervisor read
        it); transactions in flight keep running (SIGHUP)."""
        script = load_script(script_path(self.settings), source)
        self.script = script
        log.info("routing script reloaded from %s", script.path)

    def rpc_worker_reload_script(self, source: str) -> str:
        """Reload the routing script from its source (base64) as the supervisor read it for
        every worker (internal: core.reload_script and SIGHUP of a router with workers)."""
        from kamrouter.rpc import RpcError
        try:
            text = base64.b64decode(source, validate=True)
        except (TypeError, ValueError):
            raise RpcError(400, "Script reload failed: the source is not base64") from None
        return self._reload_for_rpc(text)

    def rpc_reload_script(self) -> str:
        """Reload the routing script (like SIGHUP); transactions in flight are kept."""
        return self._reload_for_rpc(None)

    def _reload_for_rpc(self, source: bytes | None) -> str:
        from kamrouter.rpc import RpcError
        try:
            self.reload_script(source)
        except ScriptError as exc:
            raise RpcError(500, f"Script reload failed: {exc}") from None
        return "Ok. Script reloaded."

    # -- running ------------------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # Control socket first: whoever sees the SIP port open can already use kamcli.
            listening = await nursery.start(partial(serve_rpc, stats=self.stats),
                                            self.settings.rpc, self.rpc)
            log.info("control interface: %s", listening)
            if listening.http is not None:
                self.own_endpoints.add(*listening.http)
            nursery.start_soon(self._run_timers)
            # Before "ready": a SIGHUP sent to a worker the supervisor lists as ready is a
            # reload, not its default action (the end of the process).
            await nursery.start(self._handle_signals, nursery.cancel_scope)
            if self.bus is not None:  # the other workers' state, before modules start
                await nursery.start(self.bus.run)
            # Modules before SIP: shared tables sync before the first call reads them.
            for module in self.modules.values():
                await module.start(nursery)
            await nursery.start(self.transports.serve, self.proxy.on_message,
                                self.proxy.on_message)
            for endpoint in self.sockets:
                self.proxy.identity.add(endpoint)
            log.info("kamrouter ready: listening on %s",
                     ", ".join(str(s) for s in self.sockets))
            self.collector.start()
            task_status.started()
        await self.stop()

    async def stop(self) -> None:
        with trio.CancelScope(shield=True):
            for module in self.modules.values():
                try:
                    await module.stop()
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("module %s failed to stop cleanly", module.name)
        self.transports.close()

    async def _run_timers(self) -> None:
        scheduler = self.scheduler
        while True:
            deadline = scheduler.next_deadline()
            self._wake = trio.Event()
            if deadline is None:
                await self._wake.wait()
            else:
                delay = deadline - self.clock()
                if delay > 0:
                    # One wake-up fires every timer due within the next tick, instead of
                    # one wake-up per deadline (thousands a second under load).
                    with trio.move_on_after(delay + TIMER_TICK):
                        await self._wake.wait()
            scheduler.fire_due(self.clock())
            await trio.lowlevel.checkpoint()

    async def _handle_signals(self, cancel_scope: trio.CancelScope,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                              ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    try:
                        self.reload_script()
                    except ScriptError as exc:
                        log.error("script reload failed, keeping the old one: %s", exc)
                    continue
                log.info("received %s, stopping", signal.Signals(signum).name)
                cancel_scope.cancel()
                return
