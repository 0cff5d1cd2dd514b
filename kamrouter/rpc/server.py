"""Starting the control plane: every configured RPC transport under one nursery.

The router calls::

    listening = await nursery.start(partial(serve_rpc, settings.rpc, router.rpc,
                                            stats=router.stats))

and gets a :class:`Listening` record of what is actually bound (the HTTP port when ``0`` was
configured). Problems with the configuration or with binding raise
:class:`~kamrouter.config.ConfigError` naming the ``rpc.*`` key, before ``started``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial

import trio

from kamrouter.config import ConfigError
from kamrouter.net import format_hostport
from kamrouter.rpc.config import RpcConfig
from kamrouter.rpc import metrics
from kamrouter.rpc.dispatch import Dispatcher
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.rpc.transports.dgram import serve_dgram
from kamrouter.rpc.transports.fifo import serve_fifo
from kamrouter.rpc.transports.http import Metrics, serve_http
from kamrouter.rpc.transports.httpauth import Credentials
from kamrouter.rpc.transports.limits import Counters, Limits
from kamrouter.rpc.transports.socketfile import Ownership, prepare_run_dir
from kamrouter.rpc.transports.stream import serve_stream
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.rpc")

#: File name of the default stream socket inside ``run_dir`` (kamcli looks for the same).
STREAM_SOCKET_NAME = "kamrouter_rpc.sock"


@dataclass(frozen=True)
class Listening:
    """What the control plane is bound to (None: that transport is off)."""

    stream_socket: str | None
    dgram_socket: str | None
    fifo: str | None
    http: tuple[str, int] | None

    def __str__(self) -> str:
        """``stream socket /run/.../kamrouter_rpc.sock, http://127.0.0.1:8080/RPC`` (the log)."""
        parts = [f"{kind} {where}" for kind, where in (
            ("stream socket", self.stream_socket), ("datagram socket", self.dgram_socket),
            ("fifo", self.fifo)) if where]
        if self.http is not None:
            parts.append(f"http://{format_hostport(*self.http)}/RPC")
        return ", ".join(parts) or "none (every [rpc] transport is off)"


def socket_paths(config: RpcConfig) -> tuple[str | None, str | None, str | None]:
    """Stream socket, datagram socket and FIFO paths; relative names live in ``run_dir``."""
    def resolve(value: str | None, default: str | None = None) -> str | None:
        if value is None:
            value = default
        return os.path.join(config.run_dir, value) if value else None

    return (resolve(config.stream_socket, STREAM_SOCKET_NAME), resolve(config.dgram_socket),
            resolve(config.fifo))


async def _registry_metrics(stats: StatsRegistry) -> str:
    return metrics.render(stats)


async def serve_rpc(config: RpcConfig, registry: MethodRegistry, *,
                    stats: StatsRegistry | None = None,
                    metrics_text: Metrics | None = None,
                    task_status: trio.TaskStatus[Listening] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve JSON-RPC on every transport enabled in ``config`` until cancelled.

    ``stats`` feeds ``GET /metrics`` on the HTTP listener (no /metrics without it, unless
    ``metrics_text`` gives the text another way) and gets the ``rpc:*`` counters.
    ``task_status.started`` is called once every transport is listening.
    """
    problems = [f"rpc.{problem}" for problem in config.validate()]
    if problems:  # a config that did not come through build_settings (tests, embedding)
        raise ConfigError(problems)
    ownership = Ownership.from_config(config)
    http = config.http_address()
    stream_path, dgram_path, fifo_path = socket_paths(config)
    if any(path is not None and os.path.dirname(path) == config.run_dir
           for path in (stream_path, dgram_path, fifo_path)):
        prepare_run_dir(config.run_dir, ownership)
    credentials = Credentials.load(config.http_auth_file) if config.http_auth_file else None
    render = metrics_text
    if render is None and stats is not None:
        render = partial(_registry_metrics, stats)
    stats = stats if stats is not None else StatsRegistry()
    dispatcher = Dispatcher(registry, config.json_limits(),
                            stats.counter("rpc", "refused_json_limit"))
    limits = Limits.from_config(config)
    counters = Counters.register(stats, log)
    failure: ConfigError | None = None
    async with trio.open_nursery() as nursery:
        try:
            if stream_path:
                await nursery.start(serve_stream, stream_path, dispatcher, limits, ownership,
                                    counters)
            if dgram_path:
                await nursery.start(serve_dgram, dgram_path, dispatcher, limits, ownership,
                                    counters)
            if fifo_path:
                await nursery.start(serve_fifo, fifo_path, config.fifo_reply_dir, dispatcher,
                                    limits, ownership, counters)
            bound_http = None
            if http is not None:
                try:
                    listeners = await nursery.start(serve_http, *http, dispatcher, render,
                                                    limits, counters, credentials)
                except OSError as exc:
                    raise ConfigError([f"rpc.http: cannot listen on {config.http}: "
                                       f"{exc.strerror}"]) from None
                bound_http = (http[0], listeners[0].socket.getsockname()[1])
        except ConfigError as exc:
            # Leave the nursery cleanly so the caller gets the ConfigError itself, not an
            # ExceptionGroup around it; transports already started unwind on cancel.
            failure = exc
            nursery.cancel_scope.cancel()
        else:
            task_status.started(Listening(stream_path, dgram_path, fifo_path, bound_http))
    if failure is not None:
        raise failure
