"""The supervisor of ``[core] workers = N`` (N > 1): it binds the SIP sockets, starts N
worker processes sharing them (:mod:`kamrouter.transport.shared`), restarts a worker that
dies, and owns the one control socket.

Each worker is ``kamrouter`` itself, started with the same config and a description of its
sockets by descriptor; it runs a whole :class:`~kamrouter.core.router.Router` with its own
transactions, and its own stream control socket ``{run_dir}/worker-N.sock``. The supervisor's
control socket (the config's, where kamcli looks) answers ``core.psx`` and ``core.ps`` with
every process, runs ``core.reload_script`` and the runtime changes of :data:`EVERY_WORKER`
in every worker, sums the workers' statistics (:mod:`kamrouter.core.worker_stats`), merges
their status answers (``core.tcp_info``, ``api.status``, ...:
:mod:`kamrouter.core.worker_status`), and passes any other method on to worker 0 (so what
modules show is worker 0's: README "Worker processes"; for the tables the workers share
through :mod:`kamrouter.modules.bus`, htable, usrloc, auth's HA1 cache and pike's bans,
that is the whole router's).

The routing script: the supervisor reads the operator's file once and hands that text
to every worker it starts (a descriptor to read it from), so a worker restarted after an
edit runs what the others run, not the edit (nor dies of it). ``core.reload_script`` and
SIGHUP read the file anew and give the text to every worker (``worker.reload_script``),
waiting for one that is starting; a worker that fails keeps the old script, and once one
took the new text, a restarted worker gets it.

Signals: SIGTERM/SIGINT stop every worker with SIGTERM (SIGKILL after
:data:`STOP_TIMEOUT`), then the supervisor; SIGHUP reloads the routing script, as
``core.reload_script``. Workers run in their own process group, so a Ctrl-C in a
terminal reaches only the supervisor, and stop when it is gone (however it died: the
end of a pipe only the supervisor can write to tells them).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from kamrouter.core.settings import Settings
from kamrouter.core.worker_connections import ConnectionTables
from kamrouter.core.worker_dispatcher import DispatcherListing
from kamrouter.core.worker_stats import SummedStats
from kamrouter.core.worker_status import MERGED, merge
from kamrouter.net import Endpoint, parse_socket
from kamrouter.rpc import forward
from kamrouter.rpc.forward import ForwardingRegistry
from kamrouter.rpc.config import RpcConfig
from kamrouter.rpc.registry import RpcError
from kamrouter.rpc.server import serve_rpc
from kamrouter.script.loader import ScriptError, read_script
from kamrouter.stats import StatsRegistry
from kamrouter.transport.shared import WorkerSockets, bind_worker_sockets

log = logging.getLogger("kamrouter.supervisor")

#: Seconds workers get to stop after SIGTERM before they are killed.
STOP_TIMEOUT = 10.0
#: A worker that dies sooner than this after its start is restarted only after a pause that
#: doubles up to :data:`MAX_RESTART_DELAY` (a config or script that kills every worker at
#: once must not become a fork loop).
STABLE_AFTER = 5.0
MAX_RESTART_DELAY = 30.0


@dataclass
class Worker:
    sockets: WorkerSockets
    #: Its own control socket (the supervisor passes methods on through it).
    control_socket: str
    process: trio.Process | None = None
    ready: bool = False
    restarts: int = 0
    exited: trio.Event = field(default_factory=trio.Event)
    #: Set once the current process serves its sockets (a new one per start).
    became_ready: trio.Event = field(default_factory=trio.Event)

    @property
    def index(self) -> int:
        return self.sockets.index

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signum)


#: Seconds a request for worker 0 waits for it to start (then: "worker 0 is starting").
STARTING_WAIT = 10.0

#: How the workers' reload errors start (said once, before each worker's).
RELOAD_FAILED = "Script reload failed: "

#: The environment variable a worker finds the router's random secret in (not in argv,
#: which every user can read in ``ps``).
SECRET_ENV = "KAMROUTER_WORKER_SECRET"

#: Keys that default to a random secret per process, and what goes wrong if two workers
#: differ: a callee's in-dialog request to a trusted caller that reaches another worker
#: than the INVITE did fails the ``;tc=`` check (permissions), a nonce issued by one
#: worker is not recognised by another (auth).
PER_PROCESS_SECRETS = {"permissions": "record_route_secret", "auth": "secret"}


def share_secrets(settings: Settings, secret: str) -> None:
    """Give every worker the same value for the secrets the config leaves empty (derived
    from ``secret``, one per module); a section that is not in the config stays out (it
    would load the module), except the always loaded permissions."""
    if not secret:  # not started by a supervisor: each keeps its own random secret
        return
    for module, key in PER_PROCESS_SECRETS.items():
        section = settings.modules.get(module)
        if section is None and module == "permissions":
            section = settings.modules.setdefault(module, {})
        if isinstance(section, dict) and not section.get(key):
            section[key] = hashlib.blake2s(f"{module}:{secret}".encode()).hexdigest()


#: RPC methods that change a worker's runtime state and may be repeated: the supervisor
#: runs them in every worker, so an operator's change reaches the whole router. Not the
#: changes the state bus carries (:mod:`kamrouter.modules.bus`: htable writes, ``ul.*``),
#: which worker 0 makes and publishes like a script's, except ``pike.ban``/``unban``: run
#: in every worker (each publishes it too, to the same effect), the answer comes when every
#: worker holds the change, so a request sent right after an unban is not met by a ban the
#: bus has not yet lifted. Not ``permissions.addressAdd``/``addressRemove``: each worker
#: would write the change into the address file again (worker 0 makes it;
#: ``addressReload`` then reaches the others).
EVERY_WORKER = frozenset({
    "htable.reload",
    "dispatcher.reload", "dispatcher.set_state", "dispatcher.set_duid_state",
    "dispatcher.add", "dispatcher.remove", "permissions.addressReload",
    "dialplan.reload", "mtree.reload",
    "dst_blocklist.add", "dst_blocklist.delete", "dst_blocklist.delete_all", "dns.delete_all",
    "corex.debug", "pike.ban", "pike.unban"})


def worker_socket_name(index: int) -> str:
    """Worker ``index``'s own control socket, beside the router's in its run_dir (a file,
    not a directory: Unix socket paths are short)."""
    return f"worker-{index}.sock"


def worker_rpc_config(rpc: RpcConfig, index: int) -> RpcConfig:
    """A worker's control plane: its own stream socket, nothing else (the supervisor
    serves the configured stream and datagram sockets, FIFO and HTTP)."""
    return dataclasses.replace(rpc, stream_socket=worker_socket_name(index), dgram_socket="",
                               fifo="", http="")


class Supervisor:
    def __init__(self, settings: Settings, worker_argv: list[str], count: int) -> None:
        """``worker_argv``: the command-line options every worker gets (config, listeners,
        log level); the sockets are bound here, at once, so a port in use fails now."""
        self.settings = settings
        self.worker_argv = worker_argv
        self.started_at = time.time()
        listens = [parse_socket(text) for text in settings.core.listen]
        specs, self._sockets = bind_worker_sockets(listens, count)
        run_dir = settings.rpc.run_dir
        self.workers = [Worker(spec, os.path.join(run_dir, worker_socket_name(spec.index)))
                        for spec in specs]
        self.stopping = False
        self._control: tuple[Endpoint, ...] = ()
        self._env = {**os.environ, SECRET_ENV: secrets.token_hex(32)}
        #: The workers read this pipe; only the supervisor holds its write end (never
        #: written to), so it ends when the supervisor does, however it died.
        self._lifeline, self._lifeline_writer = os.pipe()
        self.rpc = ForwardingRegistry(self._forward)
        self.rpc.register("core.psx", self.psx)
        self.rpc.register("core.ps", self.ps)
        self.rpc.register("core.reload_script", self.reload_script)
        self.rpc.register("system.listMethods", self.list_methods)
        self.rpc.register("system.methodHelp", self.method_help)
        self._control_scope = trio.CancelScope()
        #: The operator's routing script, and the text of it the workers run (read once
        #: here, and anew by each reload that a worker takes).
        self.script_file = settings.operator_script()
        self.script_source = read_script(self.script_file) if self.script_file else None
        self._reloading = trio.Lock()
        #: The supervisor's own counters (its control socket's), added to the workers'.
        self.stats = StatsRegistry()
        self.summed_stats = SummedStats(self._ask_every_worker, self.stats)
        self.summed_stats.register(self.rpc)
        ConnectionTables(len(self.workers), self._ask_each, self._ask_one).register(self.rpc)
        DispatcherListing(self._ask_each).register(self.rpc)

    @property
    def listens(self) -> list[str]:
        return [str(endpoint) for endpoint in self.workers[0].sockets.listens]

    # -- control socket ------------------------------------------------------------------
    def psx(self) -> list[dict[str, Any]]:
        """Returns the router's processes: the supervisor, then every worker.

        The supervisor ("main process - attendant", as Kamailio calls its first process)
        owns the control socket and restarts workers; each worker routes SIP on the shared
        listeners (PID 0 while it is being restarted).
        """
        entries = [{"IDX": 0, "PID": os.getpid(),
                    "DSC": f"main process - attendant (supervisor: control socket, "
                           f"{len(self.workers)} workers)"}]
        for worker in self.workers:
            state = "" if worker.ready else " (starting)"
            restarts = f", restarted {worker.restarts}x" if worker.restarts else ""
            entries.append({"IDX": worker.index + 1, "PID": worker.pid,
                            "DSC": f"worker {worker.index} - SIP on {', '.join(self.listens)}"
                                   f"{state}{restarts}"})
        return entries

    def ps(self) -> list[Any]:
        """Returns the router's processes as a flat list: PID, description, PID, ..."""
        return [item for entry in self.psx() for item in (entry["PID"], entry["DSC"])]

    async def reload_script(self) -> str:
        """Reload the routing script in every worker (like SIGHUP); transactions in flight
        are kept. Fails naming the workers that could not reload (they keep the old one)."""
        async with self._reloading:  # one reload at a time: one source for all
            if self.script_file is None:  # a routing mode's or the default: package code
                method, params, source = "core.reload_script", [], None
            else:
                try:
                    source = read_script(self.script_file)
                except ScriptError as exc:
                    raise RpcError(500, f"{RELOAD_FAILED}{exc}") from None
                method, params = "worker.reload_script", [base64.b64encode(source).decode()]
            failed: list[str] = []
            for worker in self.workers:
                if not await self._started(worker):
                    failed.append(f"worker {worker.index}: still starting")
                    continue
                try:
                    await forward.call(worker.control_socket, method, params,
                                       self.settings.rpc.client_timeout)
                except RpcError as exc:
                    failed.append(f"worker {worker.index}: "
                                  f"{exc.message.removeprefix(RELOAD_FAILED)}")
            if source is not None and len(failed) < len(self.workers):
                self.script_source = source  # what a restarted worker runs: the others'
        if failed:
            raise RpcError(500, RELOAD_FAILED + "; ".join(failed))
        return "Ok. Script reloaded."

    async def _started(self, worker: Worker) -> bool:
        """Whether ``worker`` serves, waiting up to :data:`STARTING_WAIT` while it starts."""
        if not worker.ready:
            with trio.move_on_after(STARTING_WAIT):
                await worker.became_ready.wait()
        return worker.ready

    async def _reload_on_signal(self) -> None:
        try:
            await self.reload_script()
        except RpcError as exc:  # as one process says it (those that failed keep it)
            log.error("script reload failed, keeping the old one: %s",
                      exc.message.removeprefix(RELOAD_FAILED))

    async def list_methods(self) -> list[str]:
        """Returns the names of all RPC methods (the workers' and the supervisor's)."""
        theirs = await self._forward_to_first("system.listMethods", [])
        return sorted({*theirs, *self.rpc.names()})

    async def method_help(self, method: str) -> str:
        """Returns the documentation of an RPC method."""
        if method in self.rpc.names():
            found = self.rpc.get(method)
            assert found is not None
            return found.help
        return await self._forward_to_first("system.methodHelp", [method])  # type: ignore[no-any-return]

    async def _ask_every_worker(self, method: str, params: list[Any]) -> list[Any]:
        """``method``'s result from every ready worker, worker 0's first."""
        return [answer for _, answer in await self._ask_each(method, params)]

    async def _ask_each(self, method: str, params: list[Any]) -> list[tuple[int, Any]]:
        """``method``'s result from worker 0 (waited for while it starts) and every other
        ready worker, with its index."""
        answers = [(0, await self._forward_to_first(method, params))]
        timeout = self.settings.rpc.client_timeout
        return answers + [(worker.index, await forward.call(worker.control_socket, method,
                                                            params, timeout))
                          for worker in self.workers[1:] if worker.ready]

    async def _ask_one(self, index: int, method: str, params: list[Any]) -> Any:
        worker = self.workers[index]
        if not worker.ready:
            raise RpcError(forward.UNREACHABLE, f"worker {index} is starting; try again")
        return await forward.call(worker.control_socket, method, params,
                                  self.settings.rpc.client_timeout)

    async def _forward(self, method: str, params: list[Any] | dict[str, Any]) -> Any:
        """A method the supervisor does not answer itself: run in every worker (the
        changes in :data:`EVERY_WORKER`, the status answers it merges) or in worker 0."""
        if method in MERGED and isinstance(params, list):
            return merge(method, await self._ask_every_worker(method, params))
        if method not in EVERY_WORKER:
            return await self._forward_to_first(method, params)
        # Applied wherever it applies (an unban where the address is banned, say): it fails
        # only if it fails in every worker, with worker 0's error.
        timeout = self.settings.rpc.client_timeout
        answers: list[Any] = []
        errors: list[RpcError] = []
        for worker in self.workers:
            if not worker.ready:
                log.warning("%s: worker %d is starting and does not get it", method,
                            worker.index)
                continue
            try:
                answers.append(await forward.call(worker.control_socket, method, params,
                                                  timeout))
            except RpcError as exc:
                log.info("%s in worker %d: %s", method, worker.index, exc.message)
                errors.append(exc)
        if answers:
            return answers[0]
        raise errors[0] if errors else RpcError(forward.UNREACHABLE,
                                                "no worker is running; try again")

    async def _forward_to_first(self, method: str, params: list[Any] | dict[str, Any]) -> Any:
        worker = self.workers[0]
        # Just started or restarted: a request meanwhile waits a while.
        if not await self._started(worker):
            raise RpcError(forward.UNREACHABLE, "worker 0 is starting; try again")
        return await forward.call(worker.control_socket, method, params,
                                  self.settings.rpc.client_timeout)

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(self._serve_control)
            log.info("control interface: %s", listening)
            if listening.http is not None:  # the workers must never send SIP there
                self._control = (Endpoint("tcp", *listening.http),)
            nursery.start_soon(self._handle_signals, nursery)
            for worker in self.workers:
                nursery.start_soon(self._keep_running, worker)
        for sock in self._sockets:
            sock.close()

    async def _serve_control(self, task_status: trio.TaskStatus[Any]
                             = trio.TASK_STATUS_IGNORED) -> None:
        with self._control_scope:
            await serve_rpc(self.settings.rpc, self.rpc, stats=self.stats,
                            metrics_text=self.summed_stats.metrics_text,
                            task_status=task_status)

    def _command(self, worker: Worker, ready_fd: int, script_fd: int) -> list[str]:
        sockets = dataclasses.replace(worker.sockets, control=self._control)
        fds = f"{ready_fd},{self._lifeline}" + (f",{script_fd}" if script_fd >= 0 else "")
        return [sys.executable, "-m", "kamrouter", *self.worker_argv,
                "--worker", sockets.to_json(), "--worker-fds", fds]

    def _script_fd(self) -> int:
        """A descriptor to read the routing script the workers run from (-1: none, they
        read the package's): an edit of the file reaches a worker by a reload only, never
        by its restart."""
        if self.script_source is None:
            return -1
        fd = os.memfd_create("kamrouter-script")
        try:
            os.write(fd, self.script_source)  # the whole: a memfd takes it at once
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
        return fd

    async def _keep_running(self, worker: Worker) -> None:
        delay = 0.5
        while not self.stopping:
            read_fd, write_fd = os.pipe()
            script_fd = -1
            try:
                script_fd = self._script_fd()
                worker.process = await trio.lowlevel.open_process(
                    self._command(worker, write_fd, script_fd),
                    pass_fds=(*worker.sockets.fds, write_fd, self._lifeline,
                              *([script_fd] if script_fd >= 0 else [])),
                    env=self._env, process_group=0)
            except OSError as exc:  # e.g. out of processes or descriptors: try again later
                os.close(read_fd)
                delay = min(delay * 2, MAX_RESTART_DELAY)
                log.error("cannot start worker %d: %s; trying again in %.1f s", worker.index,
                          exc, delay)
                await trio.sleep(delay)
                continue
            finally:
                os.close(write_fd)
                if script_fd >= 0:
                    os.close(script_fd)
            worker.ready, worker.exited, worker.became_ready = False, trio.Event(), trio.Event()
            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._await_ready, worker, read_fd)
                returncode = await worker.process.wait()
                nursery.cancel_scope.cancel()
            worker.ready = False
            worker.exited.set()
            if self.stopping:
                return
            how = (f"was killed by {signal.Signals(-returncode).name}" if returncode < 0
                   else f"exited with status {returncode}")
            delay = 0.5 if time.monotonic() - started > STABLE_AFTER \
                else min(delay * 2, MAX_RESTART_DELAY)
            log.error("worker %d (pid %d) %s; restarting it in %.1f s", worker.index,
                      worker.pid, how, delay)
            worker.restarts += 1
            await trio.sleep(delay)

    async def _await_ready(self, worker: Worker, read_fd: int) -> None:
        """The worker writes to its end of the pipe once its sockets are served."""
        async with trio.lowlevel.FdStream(read_fd) as pipe:
            if await pipe.receive_some(16):
                worker.ready = True
                worker.became_ready.set()
                log.info("worker %d ready (pid %d)", worker.index, worker.pid)

    async def _handle_signals(self, nursery: trio.Nursery) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("received SIGHUP, reloading the routing script in every worker")
                    nursery.start_soon(self._reload_on_signal)
                    continue
                log.info("received %s, stopping %d workers", signal.Signals(signum).name,
                         len(self.workers))
                # The control socket goes first: a client sees the router gone, not errors
                # from workers that are stopping.
                self._control_scope.cancel()
                await self._stop_workers()
                nursery.cancel_scope.cancel()
                return

    async def _stop_workers(self) -> None:
        self.stopping = True
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT):
            for worker in self.workers:
                if worker.process is not None and worker.process.returncode is None:
                    await worker.exited.wait()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                log.error("worker %d (pid %d) did not stop within %g s; killing it",
                          worker.index, worker.pid, STOP_TIMEOUT)
                worker.signal(signal.SIGKILL)


async def serve_worker(router: Any, ready_fd: int, lifeline_fd: int) -> None:
    """Run ``router`` as a worker: tell the supervisor once its sockets are served, and
    stop (as on SIGTERM) when the supervisor is gone, however it died."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_without_supervisor, lifeline_fd)
        ready = _Ready()
        # Not nursery.start: a SIGTERM while the router starts ends it before it is ready,
        # which is a stop, not an error.
        nursery.start_soon(_run_router, router, nursery.cancel_scope, ready)
        await ready.event.wait()
        try:
            os.write(ready_fd, b"ready\n")
        except OSError:
            pass
        os.close(ready_fd)


class _Ready:
    """The task status the router reports to: set once it serves its sockets."""

    def __init__(self) -> None:
        self.event = trio.Event()

    def started(self, value: object = None) -> None:
        self.event.set()


async def _run_router(router: Any, done: trio.CancelScope, ready: _Ready) -> None:
    await router.run(task_status=ready)
    done.cancel()  # the router has stopped: so does the watch on the supervisor


async def _stop_without_supervisor(lifeline_fd: int) -> None:
    async with trio.lowlevel.FdStream(lifeline_fd) as lifeline:
        while await lifeline.receive_some(16):
            pass  # the supervisor writes nothing: end of file means it is gone
    log.warning("the supervisor is gone; stopping")
    os.kill(os.getpid(), signal.SIGTERM)
