"""``htable``: hash tables of a running router (RPC ``htable.*``).

Keys are always sent as strings, so ``kamcli htable get students 15`` reads the key "15".
``dump`` and ``get`` show one row per item (key, value, type, expires in); ``export``/
``import`` move a table to or from CSV (key,value,type,expires) or JSON lines
({"key","value","expires"}), with a progress bar on a terminal for large tables. A match
expression (``-m``) is also applied here: Kamailio 5.6 ignores it and sends every item.
``rm`` deletes without asking (as the reference kamcli); ``flush`` empties a whole table, so
it asks on a terminal and needs ``-y`` without one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from kamcli.completion_sources import complete_htable
from kamcli.context import Context, pass_context
from kamcli.errors import LocalFileError, RpcFault
from kamcli.loader import AliasGroup

ITEM_COLUMNS = ["key", "value", "type", "expires_in"]
TABLE_COLUMNS = ["name", "size", "expire", "updateexpire", "backend", "items", "dbtable"]
#: Below this many rows a progress bar is more noise than help.
PROGRESS_FROM = 1000



@click.group("htable", cls=AliasGroup,
             aliases={"listtables": "list-tables", "list": "dump", "delete": "rm", "del": "rm"})
def cli() -> None:
    """Hash tables: list, get/set/rm items, dump, flush, reload, store, import/export."""


yes_option = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
#: For the set commands: a value such as "-5" is a value, not an unknown option.
VALUES_MAY_START_WITH_DASH = {"ignore_unknown_options": True}


def _key_matcher(match: str) -> Callable[[object], bool]:
    from kamcommon.htable_match import MatchError, compile_match

    try:
        return compile_match(match)
    except MatchError as exc:
        raise click.BadParameter(str(exc), param_hint="-m/--match") from None


def dump_rows(ctx: Context, table: str, match: str | None = None) -> list[dict[str, Any]]:
    """``htable.dump``'s buckets as one row per item, only keys matching ``match``."""
    matches = _key_matcher(match) if match is not None else None
    params = [table] if match is None else [table, match]
    with ctx.fetching(f"fetching htable {table}"):
        buckets = ctx.call("htable.dump", params) or []
    rows = [{"key": item.get("name"), "value": item.get("value"), "type": item.get("type"),
             "expires_in": item.get("expires_in")}
            for bucket in buckets for item in bucket.get("slot") or []]
    return rows if matches is None else [row for row in rows if matches(row["key"])]


def _item_row(ctx: Context, table: str, key: str) -> dict[str, Any]:
    item = ctx.rpc("htable.get", table, key)["item"]
    return {"key": item["name"], "value": item["value"],
            "type": "str" if item.get("flags") == 2 else "int", "expire": item.get("expire")}


# -- reading ------------------------------------------------------------------------------

@cli.command("list-tables")
@pass_context
def list_tables(ctx: Context) -> None:
    """List the tables and their settings."""
    ctx.output(ctx.rpc("htable.listTables"), columns=TABLE_COLUMNS, title="htables")


@cli.command("get")
@click.argument("table", shell_complete=complete_htable)
@click.argument("keys", nargs=-1)
@pass_context
def get(ctx: Context, table: str, keys: tuple[str, ...]) -> None:
    """Show items KEYS of TABLE (all items when no KEY is given)."""
    if not keys:
        ctx.output(dump_rows(ctx, table), columns=ITEM_COLUMNS, title=f"htable {table}")
        return
    rows, missing = [], []
    for key in keys:
        try:
            rows.append(_item_row(ctx, table, key))
        except RpcFault as fault:
            if fault.code != 500 or "doesn't exist" not in fault.rpc_message:
                raise
            missing.append(key)
    ctx.output(rows, columns=["key", "value", "type", "expire"], title=f"htable {table}")
    if missing:
        raise click.ClickException(f"not in htable {table}: {', '.join(missing)}")


@cli.command("dump")
@click.argument("table", shell_complete=complete_htable)
@click.option("-m", "--match", metavar="PATTERN",
              help="Only keys matching PATTERN: ~~regex, %~prefix, ~%suffix, ==exact "
                   "(no prefix: regex).")
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="Only the first N items (by key).")
@pass_context
def dump(ctx: Context, table: str, match: str | None, limit: int | None) -> None:
    """Show every item of TABLE: key, value, type, seconds until it expires.

    A large table is printed row by row (through a pager on a terminal); -o json prints
    every item unless --limit is given."""
    rows = sorted(dump_rows(ctx, table, match), key=lambda row: str(row["key"]))
    count = f"{len(rows)} item" + ("" if len(rows) == 1 else "s")
    if limit is not None and limit < len(rows):
        rows, count = rows[:limit], f"first {limit} of {count}"
    ctx.output(rows, columns=ITEM_COLUMNS, title=f"htable {table} ({count})")


@cli.command("stats")
@pass_context
def stats(ctx: Context) -> None:
    """Items per table and their spread over the buckets."""
    ctx.output(ctx.rpc("htable.stats"), columns=["name", "slots", "all", "min", "max"],
               title="htable stats")


# -- writing ------------------------------------------------------------------------------

@cli.command("sets", context_settings=VALUES_MAY_START_WITH_DASH)
@click.argument("table", shell_complete=complete_htable)
@click.argument("key")
@click.argument("value")
@pass_context
def sets(ctx: Context, table: str, key: str, value: str) -> None:
    """Set KEY to the string VALUE (digits stay a string)."""
    ctx.info(ctx.rpc("htable.sets", table, key, value))


@cli.command("seti", context_settings=VALUES_MAY_START_WITH_DASH)
@click.argument("table", shell_complete=complete_htable)
@click.argument("key")
@click.argument("value", type=int)
@pass_context
def seti(ctx: Context, table: str, key: str, value: int) -> None:
    """Set KEY to the integer VALUE."""
    ctx.info(ctx.rpc("htable.seti", table, key, value))


@cli.command("setex")
@click.argument("table", shell_complete=complete_htable)
@click.argument("key")
@click.argument("seconds", type=click.IntRange(min=0))
@pass_context
def setex(ctx: Context, table: str, key: str, seconds: int) -> None:
    """Make KEY expire SECONDS from now (0: never)."""
    ctx.info(ctx.rpc("htable.setex", table, key, seconds))


@cli.command("setxs", context_settings=VALUES_MAY_START_WITH_DASH)
@click.argument("table", shell_complete=complete_htable)
@click.argument("key")
@click.argument("value")
@click.argument("seconds", type=click.IntRange(min=0))
@pass_context
def setxs(ctx: Context, table: str, key: str, value: str, seconds: int) -> None:
    """Set KEY to the string VALUE, expiring in SECONDS (0: never)."""
    ctx.info(ctx.rpc("htable.setxs", table, key, value, seconds))


@cli.command("setxi", context_settings=VALUES_MAY_START_WITH_DASH)
@click.argument("table", shell_complete=complete_htable)
@click.argument("key")
@click.argument("value", type=int)
@click.argument("seconds", type=click.IntRange(min=0))
@pass_context
def setxi(ctx: Context, table: str, key: str, value: int, seconds: int) -> None:
    """Set KEY to the integer VALUE, expiring in SECONDS (0: never)."""
    ctx.info(ctx.rpc("htable.setxi", table, key, value, seconds))


@cli.command("rm")
@click.argument("table", shell_complete=complete_htable)
@click.argument("keys", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, hidden=True)  # accepted: rm never asks
@pass_context
def rm(ctx: Context, table: str, keys: tuple[str, ...], yes: bool) -> None:
    """Delete KEYS from TABLE (without asking, as the reference kamcli)."""
    for key in keys:
        ctx.info(f"{key}: {ctx.rpc('htable.delete', table, key)}")


@cli.command("flush")
@click.argument("table", shell_complete=complete_htable)
@yes_option
@pass_context
def flush(ctx: Context, table: str, yes: bool) -> None:
    """Delete every item of TABLE: asks on a terminal; without one, needs -y."""
    ctx.confirm(f"Delete every item of htable {table}?", yes)
    ctx.info(ctx.rpc("htable.flush", table))


@cli.command("reload")
@click.argument("table", shell_complete=complete_htable)
@pass_context
def reload(ctx: Context, table: str) -> None:
    """Read TABLE again from its SQLite file, static file or Redis."""
    ctx.info(ctx.rpc("htable.reload", table))


@cli.command("store")
@click.argument("table", shell_complete=complete_htable)
@pass_context
def store(ctx: Context, table: str) -> None:
    """Write TABLE to its SQLite file now."""
    ctx.info(ctx.rpc("htable.store", table))


# -- files --------------------------------------------------------------------------------

FORMATS = ("csv", "jsonl")


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv" or path == "-":
        return "csv"
    raise click.UsageError(f"{path}: cannot tell the format from the name; pass --format "
                           f"{'|'.join(FORMATS)}")


@contextmanager
def _progress(total: int | None, description: str) -> Iterator[Any]:
    """A progress bar on stderr for large jobs (a no-op otherwise); yields ``advance()``."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    shown = console.is_terminal and (total is None or total >= PROGRESS_FROM)
    with Progress(console=console, transient=True, disable=not shown) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


@contextmanager
def _open(path: str, mode: str) -> Iterator[Any]:
    """``click.open_file`` whose failures are one line naming the file (exit 2)."""
    try:
        f = click.open_file(path, mode, encoding="utf-8")
    except OSError as exc:
        raise LocalFileError(f"{path}: {exc.strerror or exc}") from None
    with f:
        yield f


@cli.command("export")
@click.argument("table", shell_complete=complete_htable)
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS),
              help="csv or jsonl [default: from FILE's name; csv on stdout].")
@click.option("-m", "--match", metavar="PATTERN", help="Only keys matching PATTERN.")
@pass_context
def export(ctx: Context, table: str, file: str, fmt: str | None, match: str | None) -> None:
    """Write TABLE's items to FILE (default: stdout) as CSV or JSON lines."""
    from kamcommon.htable_rows import CSV_HEADER, csv_fields, json_line

    fmt = _format_of(file, fmt)
    rows = [(row["key"], row["value"], row["expires_in"]) for row in dump_rows(ctx, table, match)]
    with _open(file, "w") as out, _progress(len(rows), f"exporting {table}") as advance:
        if fmt == "csv":
            import csv

            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            for row in rows:
                writer.writerow(csv_fields(row))
                advance()
        else:
            for row in rows:
                out.write(json_line(row) + "\n")
                advance()
    if file != "-":
        ctx.info(f"exported {len(rows)} items of htable {table} to {file}")


@cli.command("import")
@click.argument("table", shell_complete=complete_htable)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS),
              help="csv or jsonl [default: from FILE's name; csv on stdin].")
@pass_context
def import_(ctx: Context, table: str, file: str, fmt: str | None) -> None:
    """Set items of TABLE from FILE (CSV key,value,type,expires or JSON lines)."""
    from kamcommon.htable_rows import RowError, read_csv, read_json_lines

    fmt = _format_of(file, fmt)
    source = "<stdin>" if file == "-" else file
    with _open(file, "r") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError as exc:
            raise LocalFileError(f"{source}: not UTF-8 text ({exc.reason} at byte "
                                 f"{exc.start})") from None
    reader = read_csv if fmt == "csv" else read_json_lines
    try:
        rows = list(reader(lines, source))
    except RowError as exc:
        raise click.ClickException(str(exc)) from None
    with _progress(len(rows), f"importing into {table}") as advance:
        for key, value, expires in rows:
            _set_item(ctx, table, key, value, expires)
            advance()
    ctx.info(f"imported {len(rows)} items into htable {table}")


def _set_item(ctx: Context, table: str, key: str, value: Any, expires: float | None) -> None:
    """One item with the method of its type and expiry (seti/sets/setxi/setxs)."""
    kind = "i" if type(value) is int else "s"
    if expires:
        ctx.rpc(f"htable.setx{kind}", table, key, value, max(1, round(expires)))
    else:
        ctx.rpc(f"htable.set{kind}", table, key, value)
