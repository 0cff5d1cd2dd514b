"""``kamrouter`` command line: run the router, or ``--check`` a config and its script."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
import trio

from kamrouter import __version__
from kamrouter.config import ConfigError, read_toml
from kamrouter.core.settings import Settings, collect_settings, listen_problem, load_settings
from kamrouter.transport.shared import WorkerSockets

NOTICE = 25  # Kamailio's NOTICE sits between INFO and WARNING
logging.addLevelName(NOTICE, "NOTICE")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


def setup_logging(level: str, process: str = "") -> None:
    """Log lines on stderr; ``process`` (``worker-1``) tells which worker wrote one."""
    tag = f"{process} " if process else ""
    logging.basicConfig(stream=sys.stderr, level=LEVELS[level],
                        format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")


def load(config: Path | None, listen: tuple[str, ...]) -> Settings:
    """Settings from ``config`` (or the embedded default) with ``-l`` overrides applied."""
    from kamrouter.core.router import available_modules

    settings = load_settings(config, set(available_modules()))
    problems = listen_problems(listen)
    if problems:
        raise ConfigError(problems)
    if listen:
        settings.core.listen = list(listen)
    return settings


def listen_problems(listen: tuple[str, ...]) -> list[str]:
    return [f"--listen: {problem}" for text in listen
            if (problem := listen_problem(text)) is not None]


def check(config: Path | None, listen: tuple[str, ...]) -> list[str]:
    """Every problem of a config in one run: the values of all its sections, the modules'
    sections and files (list files, duplicate names), and the routing script."""
    from kamrouter.core.router import Router, available_modules
    from kamrouter.net import parse_socket
    from kamrouter.script.loader import ScriptError
    from kamrouter.transport.manager import tls_listener_problem

    problems: list[str] = []
    settings = Settings()
    if config is not None:
        try:
            raw = read_toml(config)
        except ConfigError as exc:  # not TOML: nothing more to check
            return exc.problems
        # Keys with problems keep their defaults, so the modules and script are checked too.
        settings = collect_settings(raw, set(available_modules()), config.resolve().parent,
                                    problems)
    problems += listen_problems(listen)
    listens = [parse_socket(text) for text in settings.core.listen
               if listen_problem(text) is None]  # the others are named above already
    tls_problem = tls_listener_problem(listens, bool(settings.tls.server))
    if tls_problem is not None:
        problems.append(tls_problem)
    try:
        settings.core.listen = []  # build the router without binding its ports
        Router(settings)
    except ConfigError as exc:
        problems.extend(exc.problems)
    except ScriptError as exc:
        problems.append(f"routing.script: {exc}")
    except (OSError, ValueError) as exc:
        problems.append(str(exc))
    return list(dict.fromkeys(problems))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file (default: the embedded default config).")
@click.option("-l", "--listen", multiple=True, metavar="PROTO:HOST:PORT",
              help="Listen on this socket instead of core.listen (repeatable).")
@click.option("--check", "check_only", is_flag=True,
              help="Validate the config and routing script, print every problem, exit.")
@click.option("--log-level", type=click.Choice(list(LEVELS)), help="Override core.log_level.")
@click.option("--worker", "worker_sockets", hidden=True,
              help="(set by the supervisor) run as a worker with these sockets (JSON).")
@click.option("--worker-fds", hidden=True,
              help="(set by the supervisor) READY,LIFELINE[,SCRIPT]: descriptors to write "
                   "to once serving, to watch for the supervisor's end, and to read the "
                   "routing script from.")
@click.version_option(__version__, prog_name="kamrouter")
def main(config: Path | None, listen: tuple[str, ...], check_only: bool,
         log_level: str | None, worker_sockets: str | None, worker_fds: str | None) -> None:
    """Run the kamrouter SIP router."""
    if check_only:
        problems = check(config, listen)
        for problem in problems:
            click.echo(f"kamrouter: {problem}", err=True)
        if not problems:
            click.echo(f"{config or 'embedded default config'}: OK", err=True)
        sys.exit(1 if problems else 0)
    try:
        settings = load(config, listen)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"kamrouter: {problem}", err=True)
        sys.exit(1)
    worker = WorkerSockets.from_json(worker_sockets) if worker_sockets else None
    setup_logging(log_level or settings.core.log_level,
                  f"worker-{worker.index}" if worker is not None else "")
    if worker is None:
        settings.core.workers = resolve_auto_workers(settings)
        if settings.core.worker_count() > 1:
            supervise(settings, config, listen, log_level)
            return
    from kamrouter.core.router import Router
    from kamrouter.script.loader import ScriptError

    if worker is not None:
        from kamrouter.core.supervisor import SECRET_ENV, share_secrets, worker_rpc_config

        share_secrets(settings, os.environ.pop(SECRET_ENV, ""))
        settings.core.listen = [str(endpoint) for endpoint in worker.listens]
        settings.rpc = worker_rpc_config(settings.rpc, worker.index)
    fds = [int(fd) for fd in worker_fds.split(",")] if worker_fds else []
    script_source = None
    if len(fds) > 2:  # the script as the supervisor read it, the same for every worker
        with os.fdopen(fds[2], "rb") as script:
            script_source = script.read()
    try:
        router = Router(settings, worker, script_source)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"kamrouter: {problem}", err=True)
        sys.exit(1)
    except ScriptError as exc:
        click.echo(f"kamrouter: routing.script: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"kamrouter: cannot listen: {exc}", err=True)
        sys.exit(1)
    try:
        if worker is not None and fds:
            from kamrouter.core.supervisor import serve_worker

            trio.run(serve_worker, router, fds[0], fds[1])
        else:
            trio.run(router.run)
    except* ConfigError as group:  # e.g. the control socket is in use by another router
        exit_with_problems(group)


def resolve_auto_workers(settings: Settings) -> int:
    """``workers = "auto"`` (the default) as a count: one per CPU, unless the config is
    better off in one process (:func:`connection_clients`): then one process, and the log
    says why (an explicit count above 1 is kept, with that warning)."""
    count = settings.core.worker_count()
    clients = connection_clients(settings) if count > 1 else None
    if clients is None:
        return count
    log = logging.getLogger("kamrouter")
    if not settings.core.is_auto():
        log.warning("workers = %d: %s", count, clients)
        return count
    log.warning('workers = "auto": one process instead of %d, because %s', count, clients)
    return 1


#: Transports on which a client holds a connection to the router.
CONNECTION_TRANSPORTS = ("tcp", "tls", "ws", "wss")


def connection_clients(settings: Settings) -> str | None:
    """Why a registrar with connection listeners is better off in one process: a phone's
    connection is held by the worker it reached, and a call to it that another worker
    routes (an INVITE from a UDP phone) would need a connection of its own, which a client
    behind NAT (and a browser) cannot accept. None when that does not apply."""
    loaded = {*settings.modules, *settings.core.load_modules}
    connections = sorted({text.split(":", 1)[0].lower() for text in settings.core.listen}
                         & set(CONNECTION_TRANSPORTS))
    if not ({"registrar", "usrloc"} & loaded and connections):
        return None
    return (f"the registrar's clients on {'/'.join(connections)} hold a connection to one "
            "worker, and a call to them routed by another worker cannot use it")


def supervise(settings: Settings, config: Path | None, listen: tuple[str, ...],
              log_level: str | None) -> None:
    """Run ``[core] workers`` worker processes under a supervisor (see
    :mod:`kamrouter.core.supervisor`); the config and script are checked first, so a bad
    one fails here once instead of in every worker."""
    count = settings.core.worker_count()
    problems = check(config, listen)
    if problems:
        for problem in problems:
            click.echo(f"kamrouter: {problem}", err=True)
        sys.exit(1)
    from kamrouter.core.supervisor import Supervisor
    from kamrouter.script.loader import ScriptError

    argv = ["-c", str(config.resolve())] if config is not None else []
    argv += ["--log-level", log_level or settings.core.log_level]
    try:
        supervisor = Supervisor(settings, argv, count)
    except OSError as exc:
        click.echo(f"kamrouter: cannot listen: {exc}", err=True)
        sys.exit(1)
    except ScriptError as exc:  # gone since the check
        click.echo(f"kamrouter: routing.script: {exc}", err=True)
        sys.exit(1)
    log = logging.getLogger("kamrouter")
    log.info("kamrouter starting %d workers on %s", count, ", ".join(supervisor.listens))
    try:
        trio.run(supervisor.run)
    except* ConfigError as group:  # e.g. the control socket is in use by another router
        exit_with_problems(group)


def exit_with_problems(group: BaseExceptionGroup[ConfigError]) -> None:
    """Print the problems of every ConfigError in ``group`` (nested groups too), exit 1."""
    for error in _leaves(group):
        for problem in error.problems if isinstance(error, ConfigError) else [str(error)]:
            click.echo(f"kamrouter: {problem}", err=True)
    sys.exit(1)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
