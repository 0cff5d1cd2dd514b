"""``shell``: an interactive kamcli with history, completion and one reused connection.

Any kamcli command works at the prompt (``stats core:``, ``rpc htable.get t k``), with
completion of commands, options and the router's RPC method names (the same completion code
as bash/zsh/fish). Shell words: ``help``, ``output FORMAT`` (switch the output format),
``-o FORMAT COMMAND...`` (for one command), ``exit``/``quit``/Ctrl-D. With stdin not a
terminal, commands are read line by line (``kamcli shell < commands.txt``).
"""
from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

from kamcli.config import OUTPUT_FORMATS
from kamcli.context import Context, pass_context
from kamcli.errors import error_line

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document

SHELL_WORDS = {"help": "list the commands", "output": "switch the output format",
               "exit": "leave the shell", "quit": "leave the shell"}
PROMPT = "kamcli> "
SHELL_HELP = f"""
In the shell (no "kamcli" in front of commands):
  output FORMAT           switch the output format ({', '.join(OUTPUT_FORMATS)})
  -o FORMAT COMMAND...    one command in another format
  exit, quit, Ctrl-D      leave the shell"""


class Shell:
    """Runs command lines inside one kamcli run (one Context, one router connection)."""

    def __init__(self, root: click.Context, ctx: Context) -> None:
        self.root = root
        self.ctx = ctx
        self.status = 0

    def greet(self) -> None:
        try:
            version = self.ctx.rpc("core.version")
        except click.ClickException as exc:
            self.ctx.info(f"kamcli shell: not connected yet ({exc.format_message()})")
        else:
            self.ctx.info(f"kamcli shell: {version} at {self.ctx.options.target}")
        self.ctx.info("Type help for the commands, exit or Ctrl-D to leave.")

    def run_line(self, line: str) -> bool:
        """Run one command line; False when the user asked to leave."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.ctx.info(f"Error: {exc}")
            self.status = 2
            return True
        if not words:
            return True
        if words[0] in ("exit", "quit"):
            return False
        if words[0] == "help":
            click.echo(self.root.get_help() + "\n" + SHELL_HELP)
            return True
        if words[0] == "output":
            self._switch_output(words[1:])
            return True
        one_off = None
        if words[0] in ("-o", "--output") and len(words) > 2 and words[1] in OUTPUT_FORMATS:
            one_off, words = words[1], words[2:]
        saved = self.ctx.output_format
        self.ctx.output_format = one_off or saved
        try:
            self.status = self._invoke(words)
        finally:
            self.ctx.output_format = saved
        return True

    def _switch_output(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in OUTPUT_FORMATS:
            self.ctx.info(f"usage: output {'|'.join(OUTPUT_FORMATS)} "
                          f"(now {self.ctx.output_format})")
            return
        self.ctx.output_format = args[0]

    def _invoke(self, words: list[str]) -> int:
        group = self.root.command
        assert isinstance(group, click.Group)
        if words[0] == "shell":
            self.ctx.info("Already in the shell.")
            return 0
        try:
            name, command, args = group.resolve_command(self.root, words)
            assert command is not None and name is not None
            with command.make_context(name, args, parent=self.root) as sub_ctx:
                command.invoke(sub_ctx)
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            self.ctx.info(error_line(exc, in_shell=True))
            return exc.exit_code
        except click.Abort:
            self.ctx.info("Aborted.")
            return 1
        except KeyboardInterrupt:
            self.ctx.info("Interrupted.")
            return 130
        return 0

    def run_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            if not self.run_line(line):
                break


def completions(shell: Shell, text: str) -> Iterator[tuple[str, int, str]]:
    """``(word, start position, description)`` candidates for the line typed so far."""
    from click.shell_completion import ShellComplete

    try:
        words = shlex.split(text)
    except ValueError:
        return
    incomplete = "" if not text or text[-1].isspace() else words.pop()
    if not words:
        for word, meta in SHELL_WORDS.items():
            if word.startswith(incomplete):
                yield word, -len(incomplete), meta
    elif words[0] == "output":
        if len(words) == 1:
            yield from ((f, -len(incomplete), "") for f in OUTPUT_FORMATS
                        if f.startswith(incomplete))
        return
    # Click's own resolution, as for bash/zsh/fish, with the shell's Context (cached
    # method names, open connection) handed to the completion callbacks.
    click_complete = ShellComplete(shell.root.command, {"obj": shell.ctx}, "kamcli", "")
    for item in click_complete.get_completions(words, incomplete):
        yield item.value, -len(incomplete), item.help or ""


def make_completer(shell: Shell) -> Completer:
    from prompt_toolkit.completion import Completer, Completion

    class KamcliCompleter(Completer):
        def get_completions(self, document: Document,
                            complete_event: CompleteEvent) -> Iterator[Completion]:
            for word, start, meta in completions(shell, document.text_before_cursor):
                yield Completion(word, start, display_meta=meta)

    return KamcliCompleter()


def _history(path: str, ctx: Context) -> Any:
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()
    except OSError as exc:
        ctx.warn(f"history not saved: {path}: {exc.strerror}")
        return InMemoryHistory()
    return FileHistory(path)


def interactive(shell: Shell, *, input: Any = None, output: Any = None) -> None:
    """The prompt loop (``input``/``output``: prompt_toolkit objects, for tests)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory

    session: PromptSession[str] = PromptSession(
        history=_history(shell.ctx.options.history_file, shell.ctx),
        completer=make_completer(shell), complete_while_typing=True,
        auto_suggest=AutoSuggestFromHistory(), input=input, output=output)
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if not shell.run_line(line):
            return


@click.command("shell")
@pass_context
def shell(ctx: Context) -> None:
    """Interactive shell: history, completion (commands, options, RPC methods)."""
    session = Shell(click.get_current_context().find_root(), ctx)
    if sys.stdin.isatty():
        session.greet()
        interactive(session)
    else:
        session.run_lines(sys.stdin)
    if session.status:
        raise click.exceptions.Exit(session.status)
