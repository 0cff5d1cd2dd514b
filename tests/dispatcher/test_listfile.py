"""List file and [[dispatcher.destination]] parsing."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.modules.dispatcher.attrs import parse_attrs, split_attrs
from kamrouter.modules.dispatcher.listfile import (
    ListError, parse_list, read_list, specs_from_tables,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "dispatcher.list"


def test_kamailio_format() -> None:
    text = """
# comment
   # indented comment

10 sip:10.0.0.11:5060 0 20 duid=gwA;weight=70;ping_from=sip:probe@edge.example.net
10 sip:10.0.0.12:5060;transport=tcp 0x8 10 duid=gwB;weight=30;socket=tcp:10.0.0.1:5060
20 sip:media.example.net
"""
    a, b, c = parse_list(text, "ds.list")
    assert (a.setid, a.uri, a.flags, a.priority) == (10, "sip:10.0.0.11:5060", 0, 20)
    assert a.attrs.duid == "gwA" and a.attrs.weight == 70
    assert a.attrs.ping_from == "sip:probe@edge.example.net"
    assert a.origin == "ds.list:5"
    assert b.flags == 8 and b.attrs.socket == "tcp:10.0.0.1:5060"
    assert b.address.transport == "tcp" and b.address.ip == "10.0.0.12"
    assert (c.flags, c.priority, c.attrs.body) == (0, 0, "")
    assert c.address.ip is None and c.address.effective_port == 5060


def test_unknown_attrs_kept_verbatim_and_quoted_values() -> None:
    attrs = parse_attrs('duid=x;cc=1;foo=bar baz;ping_from="sip:p@h;transport=tcp";flag')
    assert attrs.duid == "x"
    assert attrs.values == {"duid": "x", "cc": "1", "foo": "bar baz",
                            "ping_from": "sip:p@h;transport=tcp", "flag": ""}
    assert attrs.ping_from == "sip:p@h;transport=tcp"
    assert split_attrs("a=1;;b=2;") == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize(("line", "problem"), [
    ("x sip:a.example", "setid 'x' is not an integer"),
    ("1", "expected 'setid uri [flags [priority [attrs]]]'"),
    ("1 http://a.example", "invalid SIP URI 'http://a.example'"),
    ("1 sip:a.example zz", "flags 'zz' is not a non-negative decimal or 0x number"),
    ("1 sip:a.example 0 high", "priority 'high' is not an integer"),
    ("1 sip:a.example 0 0 weight=abc", "attrs: weight='abc': expected an integer"),
    ("1 sip:a.example 0 0 weight=150", "attrs: weight=150: must be between 0 and 100"),
    ("1 sip:a.example 0 0 socket=udp:1.2.3.4:99999", "attrs: socket: "),
    ("1 sip:a.example 0 0 ping_from=mailto:x", "attrs: ping_from: expected a sip: or sips: URI, got 'mailto:x'"),
    ("1 sip:a.example 0 0 obproxy=\"sip:x", "attrs: unterminated quoted value of 'obproxy'"),
])
def test_bad_line_names_file_line_and_reason(line: str, problem: str) -> None:
    with pytest.raises(ListError) as err:
        parse_list(f"# header\n1 sip:ok.example\n{line}\n", "/etc/ds.list")
    (reported,) = err.value.problems
    assert reported.startswith("/etc/ds.list:3: ")
    assert problem in reported


def test_every_bad_line_is_reported() -> None:
    with pytest.raises(ListError) as err:
        parse_list("1 sip:a.example\nbad\n2 sip:b.example\n3 nope:x\n", "l")
    assert [p.split(":")[1] for p in err.value.problems] == ["2", "4"]


def test_read_list_errors(tmp_path: Path) -> None:
    with pytest.raises(ListError, match="cannot read"):
        read_list(tmp_path / "missing.list")
    (tmp_path / "bin.list").write_bytes(b"1 sip:\xff\n")
    with pytest.raises(ListError, match="not UTF-8"):
        read_list(tmp_path / "bin.list")


def test_toml_tables() -> None:
    a, b = specs_from_tables([
        {"setid": 1, "uri": "sip:127.0.0.1:5070", "priority": 5,
         "attrs": {"weight": 70, "duid": "a"}},
        {"setid": 1, "uri": "sip:127.0.0.1:5071", "flags": 8, "attrs": "weight=30"},
    ], "dispatcher.destination")
    assert a.attrs.weight == 70 and a.attrs.duid == "a" and a.priority == 5
    assert a.origin == "dispatcher.destination[0]"
    assert b.flags == 8 and b.attrs.weight == 30
    with pytest.raises(ListError) as err:
        specs_from_tables([{"uri": "sip:x.example", "wieght": 1},
                           {"setid": "1", "uri": "sip:x.example"}], "dispatcher.destination")
    assert err.value.problems == [
        "dispatcher.destination[0]: unknown key 'wieght'",
        "dispatcher.destination[0].setid: missing",
        "dispatcher.destination[1]: setid '1' is not a non-negative integer",
    ]


def test_shipped_example_list_loads() -> None:
    specs = read_list(EXAMPLE)
    assert specs and all(s.address.ip == "127.0.0.1" for s in specs)
