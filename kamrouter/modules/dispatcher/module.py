"""The dispatcher module: wires the sans-IO core to the router (config, scheduler, tm, RPC,
events, transaction ends) and does the little I/O there is (reading the list file, resolving
host names)."""
from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.dispatcher.algorithms import CALL_LOAD
from kamrouter.modules.dispatcher.api import VARS_KEY, DispatcherApi, Selection
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.flags import NODNSARES
from kamrouter.modules.dispatcher.listfile import DestinationSpec, ListError
from kamrouter.modules.dispatcher.probing import Prober
from kamrouter.modules.dispatcher.rpc import DispatcherRpc
from kamrouter.modules.dispatcher.bus_link import DispatcherBus
from kamrouter.modules.dispatcher.load_bus import CallLoadBus
from kamrouter.modules.dispatcher.workers import (
    FOLLOW_INTERVAL, STATES_METHOD, StateFollower, state_records,
)
from kamrouter.rpc.registry import RpcError
from kamrouter.script.message import transaction_vars
from kamrouter.timers import Timer

if TYPE_CHECKING:
    from kamrouter.tm import Transaction

log = logging.getLogger("kamrouter.dispatcher")


def _resolve(host: str, port: int) -> frozenset[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return frozenset(str(info[4][0]) for info in infos)


class DispatcherModule(Module):
    name = "dispatcher"
    Config = DispatcherConfig

    def __init__(self, router: RouterServices, config: DispatcherConfig) -> None:
        super().__init__(router, config)
        list_path = None
        if config.list_file:
            list_path = Path(config.list_file)
            base_dir = getattr(getattr(router, "settings", None), "base_dir", None)
            if not list_path.is_absolute() and base_dir is not None:
                list_path = Path(base_dir) / list_path
        try:
            self.dispatcher = Dispatcher(
                config, router.stats, router.clock,
                lambda event, data: router.emit(event, **data), list_path)
            self.dispatcher.reload()
        except ListError as exc:
            raise ConfigError([f"dispatcher: {problem}" for problem in exc.problems]) from None
        self.prober = Prober(self.dispatcher, router.scheduler, self._send_request)
        self._api = DispatcherApi(self.dispatcher)
        DispatcherRpc(self.dispatcher, self.reload).register(router.rpc)
        #: With worker processes, worker 0 probes and the others follow its states.
        self._worker_index = router.worker_index
        if self._worker_index is not None:
            router.rpc.register(STATES_METHOD, self._states)
        if router.bus is not None:  # several workers: marks, probes and call load in all
            DispatcherBus(router.bus, self.dispatcher)
            CallLoadBus(router.bus, self.dispatcher, router.scheduler)
        router.on_transaction_end(self._transaction_ended)
        self._reload_lock = trio.Lock()
        self._sweep: Timer | None = None

    def api(self) -> DispatcherApi:
        return self._api

    async def start(self, nursery: trio.Nursery) -> None:
        await self._resolve_names(self.dispatcher.list.specs())
        if self._worker_index:
            nursery.start_soon(self._follow_first_worker)
        else:
            self.prober.start()
        self._arm_sweep()

    async def stop(self) -> None:
        self.prober.stop()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    async def reload(self) -> None:
        """Re-read the sources and swap the list; concurrent reloads run one after another."""
        async with self._reload_lock:
            specs = await trio.to_thread.run_sync(self.dispatcher.read_sources)
            await self._resolve_names(specs)
            self.dispatcher.replace_list(specs)

    async def _resolve_names(self, specs: list[DestinationSpec]) -> None:
        """Look up host-name targets (for is_from_list) without blocking the router."""
        for spec in specs:
            address = spec.address
            if address.ip is not None or spec.flags & NODNSARES:
                continue
            try:
                found = await trio.to_thread.run_sync(_resolve, address.host_ip,
                                                      address.effective_port)
            except OSError as exc:
                log.warning("dispatcher: cannot resolve %s (%s): is_from_list will not match it",
                            spec.uri, exc)
                continue
            self.dispatcher.set_resolved(address.host_ip, found)

    def _states(self) -> list[list[Any]]:
        """Returns [set id, URI, state bits] of every destination (for the other workers)."""
        return state_records(self.dispatcher)

    async def _follow_first_worker(self) -> None:
        follower = StateFollower(self.dispatcher)
        while True:
            await trio.sleep(FOLLOW_INTERVAL)
            try:
                follower.follow(await self.router.ask_worker(0, STATES_METHOD, []))
            except RpcError as exc:  # worker 0 is being restarted: look again later
                log.debug("dispatcher: cannot ask worker 0 for its states: %s", exc.message)
            except ValueError as exc:
                log.warning("dispatcher: unreadable states from worker 0: %s", exc)

    def _arm_sweep(self) -> None:
        def sweep() -> None:
            self.dispatcher.calls.expire_due(self.router.clock())
            self._arm_sweep()

        self._sweep = self.router.scheduler.call_later(self.config.call_load_check_interval, sweep)

    def _send_request(self, method: str, ruri: str, **kwargs: Any) -> None:
        self.router.send_request(method, ruri, **kwargs)

    def _transaction_ended(self, txn: Transaction) -> None:
        """Algorithm 10 without script help: an INVITE transaction that ends without a 2xx
        (refused, cancelled, timed out, never answered) frees the load its selection holds,
        unless a newer INVITE of the call took the load over."""
        if txn.method != "INVITE" or 200 <= txn.final_status < 300:
            return
        selection = transaction_vars(txn).get(VARS_KEY)
        if isinstance(selection, Selection) and selection.alg == CALL_LOAD:
            self.dispatcher.calls.release(txn.request.call_id, owner=selection.load_owner)
