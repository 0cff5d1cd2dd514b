"""kamcli's pure parts: parameter typing, table shapes, rates, targets, config validation."""
from __future__ import annotations

import click
import pytest
from rich.console import Console

from kamcli.commands.core import duration
from kamcli.commands.stats import Line, newspaper, stats_view
from kamcli.config import load_file_settings
from kamcli.errors import ConfigFileError, RpcFault, error_line
from kamcli.live import Rates, number
from kamcli.output import build_table
from kamcli.params import parse_params
from kamcli.transport import Target


def rendered(result, **kwargs) -> str:
    console = Console(width=100, record=True, color_system=None)
    table = build_table(result, **kwargs)
    assert table is not None
    console.print(table)
    return console.export_text()


def test_params() -> None:
    # Strings unless typed, as the reference kamcli: "1000" stays the string "1000".
    assert parse_params(("42", "s:42", "i:7", "x y", "[1]", "true"), named=False) == [
        "42", "42", 7, "x y", "[1]", "true"]
    assert parse_params(("42", "s:42", "i:7", "x y", "[1]", "Infinity"), named=False,
                        as_json=True) == [42, "42", 7, "x y", [1], "Infinity"]
    assert parse_params(("a=1", "b=i:1", "c=x=y"), named=True) == {"a": "1", "b": 1, "c": "x=y"}
    with pytest.raises(click.BadParameter, match="param 1 'i:x'"):
        parse_params(("i:x",), named=False)
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        parse_params(("novalue",), named=True)


def test_table_shapes() -> None:
    rows = rendered([{"IDX": 0, "DSC": "main"}, {"IDX": 1, "DSC": "[bold]x", "EXTRA": [1]}])
    assert "IDX" in rows and "EXTRA" in rows and "[bold]x" in rows and "[1]" in rows
    nested = rendered({"t1": {"size": 2}, "t2": {"size": 3, "auto": True}})
    assert nested.split()[:3] == ["name", "size", "auto"] and "t1" in nested
    flat = rendered({"now": "today", "uptime": 5}, columns=["key", "val"])
    assert flat.split()[:2] == ["key", "val"]
    assert "core.psx" in rendered(["core.psx"], columns=["method"])
    assert build_table("a string") is None and build_table(5) is None


def test_newspaper_columns() -> None:
    groups = {"core": [("a", "core:a", 1), ("b", "core:b", 0), ("c", "core:c", 0)],
              "sl": [("d", "sl:d", 2)], "tmx": [("e", "tmx:e", 3)]}
    assert newspaper(groups, 20) == [[
        Line("core", header=True), Line("a", "core:a", 1), Line("b", "core:b", 0),
        Line("c", "core:c", 0), Line(), Line("sl", header=True), Line("d", "sl:d", 2), Line(),
        Line("tmx", header=True), Line("e", "tmx:e", 3)]]
    # A group running on repeats its header; none starts at a column's foot.
    assert newspaper(groups, 3) == [
        [Line("core", header=True), Line("a", "core:a", 1), Line("b", "core:b", 0)],
        [Line("core (cont.)", header=True), Line("c", "core:c", 0)],
        [Line("sl", header=True), Line("d", "sl:d", 2)],
        [Line("tmx", header=True), Line("e", "tmx:e", 3)]]


def test_statistics_view_uses_the_width() -> None:
    """150 statistics in 10 groups: side by side on a wide terminal, stacked on a narrow one."""
    values = {f"group{g}:statistic_{n}": g * n for g in range(10) for n in range(15)}

    def lines(width: int, shown: dict[str, int] = values) -> list[str]:
        console = Console(width=width, record=True, color_system=None)
        console.print(stats_view(shown, console, rates={"group1:statistic_2": 2.5}))
        return console.export_text().splitlines()

    assert len(lines(160, {f"tmx:s{n}": n for n in range(15)})) == 16  # a short list stays one
    assert lines(160, {}) == [""]
    wide, narrow = lines(160), lines(40)
    assert len(narrow) == 10 * (15 + 2) - 1
    assert len(wide) <= len(narrow) / 4 + 1 and max(len(line.rstrip()) for line in wide) <= 160
    text = "\n".join(wide)
    assert all(f"group{g}" in text for g in range(10)) and "2.5" in text


def test_error_lines() -> None:
    group = click.Group("kamcli", commands=[click.Command("stats")],
                        params=[click.Option(["-o", "--output"])])
    root = click.Context(group, info_name="kamcli")
    sub = click.Context(group.commands["stats"], parent=root, info_name="stats")
    assert error_line(click.UsageError("bad.", sub)) == "Error: bad; see 'kamcli stats --help'"
    assert error_line(click.UsageError("bad", sub), in_shell=True) == (
        "Error: bad; see 'stats --help'")
    assert error_line(click.UsageError("bad", root), in_shell=True) == (
        "Error: bad; type help for the commands")
    assert error_line(RpcFault("x.y", 404, "not found")) == "Error: x.y: not found (code 404)"
    assert error_line(click.NoSuchOption("-o", ctx=sub)) == (
        "Error: -o goes before the command: kamcli -o ... stats")
    assert error_line(click.NoSuchOption("-o", ctx=sub), in_shell=True) == (
        "Error: -o goes before the command: -o ... stats")
    assert error_line(click.NoSuchOption("-x", ctx=sub)) == (
        "Error: No such option '-x'; see 'kamcli stats --help'")


def test_rates_and_numbers() -> None:
    rates = Rates()
    assert rates.update({"a": 10, "b": "x"}, now=100.0) == {"a": None, "b": None}
    assert rates.update({"a": 30, "b": "x"}, now=102.0) == {"a": 10.0, "b": None}
    assert number("12") == 12 and number("1.5") == 1.5 and number("n/a") == "n/a"
    assert duration(93784) == "1d 2h 3m 4s" and duration(5) == "5s"


def test_targets() -> None:
    assert Target.from_url("http://h:1/RPC") == Target("http", "http://h:1/RPC")
    assert Target.from_url("dgram:///run/k.sock") == Target("dgram", "/run/k.sock")
    assert Target.from_url("fifo:/tmp/f") == Target("fifo", "/tmp/f")
    assert Target.from_socket("/x.sock").kind == "auto"
    with pytest.raises(ValueError, match="expected http://"):
        Target.from_url("ftp://x")


def test_config_file_problems_name_file_and_key(tmp_path) -> None:
    path = tmp_path / "k.toml"
    path.write_text('output = "xml"\ndebug = 1\n[aliases]\nu = ""\n')
    with pytest.raises(ConfigFileError) as failure:
        load_file_settings(str(path))
    message = failure.value.format_message()
    assert str(path) in message and "output: expected one of" in message
    assert "debug: expected true or false" in message and "aliases.u" in message
    path.write_text("timeout = 2\n")
    assert load_file_settings(str(path)).timeout == 2.0
    with pytest.raises(ConfigFileError, match="not found"):
        load_file_settings(str(tmp_path / "missing.toml"))


def test_stream_transport_reconnects_after_the_server_closed_an_idle_connection(
        tmp_path) -> None:
    """The router closes idle connections; the next call (e.g. in the shell) reconnects."""
    import socket
    import threading

    from kamcli.transport import StreamTransport

    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    first_closed = threading.Event()

    def serve_two_connections() -> None:
        for answer in (b'{"n": 1}\n', b'{"n": 2}\n'):
            conn, _ = server.accept()
            with conn:
                conn.recv(1000)
                conn.sendall(answer)
            first_closed.set()  # closing after the reply: an idle timeout, compressed

    thread = threading.Thread(target=serve_two_connections)
    thread.start()
    client = StreamTransport(path, timeout=10)
    try:
        assert client.exchange(b"{}") == b'{"n": 1}\n'
        assert first_closed.wait(10)
        assert client.exchange(b"{}") == b'{"n": 2}\n'
    finally:
        client.close()
        thread.join(10)
        server.close()


def test_long_lists_are_streamed_in_plain_columns(capsys: pytest.CaptureFixture[str]) -> None:
    from kamcli.output import STREAM_FROM, render

    rows = [{"key": f"k{i}", "value": "x" * (i % 7), "when": None} for i in range(STREAM_FROM + 1)]
    render(rows, "table", lambda: pytest.fail("no Rich console for a long list"),
           columns=["key", "value", "when"], title="t")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(rows) + 3  # title, header, rule
    assert lines[1].split() == ["key", "value", "when"] and set(lines[2]) == {"─"}
    assert lines[3] == "k0" and lines[4] == "k1    x"
    assert len(lines[-1]) <= len(lines[2])


def test_stream_lines_keep_one_row_per_line() -> None:
    from kamcli.output import stream_lines

    lines = list(stream_lines([{"a": "two\nlines", "b": 1}], ["a", "b"], None))
    assert lines == ["a           b", "─" * 13, "two\\nlines  1"]
