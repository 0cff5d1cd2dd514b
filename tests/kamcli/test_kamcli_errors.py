"""Every kamcli command, given bad arguments, fails in one line with the right exit code:
never a Python traceback (kamcli runs in-process here, against the real test router)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
import pytest

from kamcli.main import cli, main

if TYPE_CHECKING:
    from conftest import Router

#: Values that are wrong for some argument of every kind: a name, a path, a number, a pattern.
BAD_VALUES = ["nosuch", "/nonexistent-dir/x.csv", "-1", "", "%[(", "1" * 30]
#: Commands that run until Ctrl-C (or read a terminal) when their arguments are fine: only
#: an unknown option and non-numeric option values are tried on them.
UNTIL_INTERRUPTED = {"moni", "dispatcher watch", "shell"}
#: It resolves and probes the host it is given: no bad host names sent to the resolver.
NO_BAD_TARGETS = {"sipcheck"}


def leaf_commands() -> Iterator[tuple[str, click.Command]]:
    root = click.Context(cli)

    def walk(group: click.Group, ctx: click.Context, prefix: str) -> Iterator[
            tuple[str, click.Command]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or getattr(command, "hidden", False):
                continue
            path = f"{prefix}{name}"
            if isinstance(command, click.Group):
                yield from walk(command, click.Context(command, parent=ctx), path + " ")
            else:
                yield path, command

    yield from walk(cli, root, "")


def bad_invocations(path: str, command: click.Command) -> Iterator[list[str]]:
    words = path.split()
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option)
               and not p.is_flag and p.name != "help"]
    yield [*words, "--nosuch-option"]
    if path in UNTIL_INTERRUPTED:
        for option in options:
            yield [*words, option.opts[0], "nosuch"]
        return
    yield words
    if path in NO_BAD_TARGETS:
        return
    for value in BAD_VALUES:
        filled = [value] * len(arguments)
        yield [*words, *filled]
        for option in options:
            yield [*words, *filled, option.opts[0], value]


def run(argv: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["kamcli", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.err


def test_no_traceback_for_bad_arguments(router: Router, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in router.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(router.home)
    commands = dict(leaf_commands())
    assert {"htable import", "htable export", "tcp list", "config show"} <= set(commands)
    problems = []
    tried = 0
    try:
        for path, command in commands.items():
            for argv in bad_invocations(path, command):
                tried += 1
                code, err = run(argv, capsys, monkeypatch)
                one_line = code == 0 or (err.count("\n") == 1 and err.startswith("Error: "))
                if "Traceback" in err or code not in (0, 1, 2, 3) or not one_line:
                    problems.append(f"kamcli {' '.join(argv)!r}: exit {code}: {err[-300:]}")
    finally:
        run(["srv", "debug", "info"], capsys, monkeypatch)  # a bad level may have been set
    assert tried > 300
    assert problems == [], "\n".join(problems)
