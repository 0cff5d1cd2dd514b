"""``kamrouter`` command line: run the router, or ``--check`` a config and its script."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import trio

from kamrouter import __version__
from kamrouter.config import ConfigError, read_toml
from kamrouter.core.settings import Settings, collect_settings, listen_problem, load_settings

NOTICE = 25  # Kamailio's NOTICE sits between INFO and WARNING
logging.addLevelName(NOTICE, "NOTICE")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


def setup_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=LEVELS[level],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
@click.version_option(__version__, prog_name="kamrouter")
def main(config: Path | None, listen: tuple[str, ...], check_only: bool,
         log_level: str | None) -> None:
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
    setup_logging(log_level or settings.core.log_level)
    from kamrouter.core.router import Router
    from kamrouter.script.loader import ScriptError

    try:
        router = Router(settings)
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
        trio.run(router.run)
    except* ConfigError as group:  # e.g. the control socket is in use by another router
        for error in group.exceptions:
            for problem in error.problems if isinstance(error, ConfigError) else [str(error)]:
                click.echo(f"kamrouter: {problem}", err=True)
        sys.exit(1)
