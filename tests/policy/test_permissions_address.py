"""Address groups: entries, matching and Kamailio's address file format (sans-IO)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.modules.permissions.address import (
    AddressTable, append_to_file, load_file, make_entry, parse_line, remove_from_file)


def test_entries_normalise_like_kamailio():
    assert make_entry(1, "127.0.0.1").mask == 32  # no mask: the whole address
    assert make_entry(2, "192.168.1.7", 24).address == "192.168.1.0"
    assert make_entry(2, "10.0.0.0/8").mask == 8
    assert make_entry(3, "[0:0::1]").address == "::1"
    assert make_entry(3, "::ffff:127.0.0.2").address == "127.0.0.2"
    assert make_entry(4, "SBC.Example.com").kind == "domain"
    assert [make_entry(1, a).kind for a in ("10.0.0.1", "10.0.0.0/8", "a.b")] == [
        "address", "subnet", "domain"]


@pytest.mark.parametrize("args, problem", [
    ((0, "127.0.0.1"), "group"), ((1, "127.0.0.1", 33), "mask"),
    ((1, "127.0.0.1", 0, 70000), "port"), ((1, "127.0.0.1", 0, 0, "carrier-pigeon"), "proto"),
    ((1, "10.0.0.0/x"), "prefix"), ((1, "a b"), "address"),
    ((1, "127.0.0.1", 0, 0, "any", "two words"), "tag"),
])
def test_bad_entries_say_what_is_wrong(args, problem):
    with pytest.raises(ValueError, match=problem):
        make_entry(*args)


def test_matching_exact_subnet_domain_port_and_proto():
    table = AddressTable([
        make_entry(1, "127.0.0.1"),
        make_entry(2, "10.0.0.0/8", tag="wide"),
        make_entry(3, "10.1.0.0/16", port=5060, tag="narrow"),
        make_entry(4, "192.0.2.9", proto="tcp"),
        make_entry(5, "gw.example.com", port=5061),
    ])
    assert table.find("127.0.0.1", 40000).group == 1       # port 0 matches any port
    assert table.find("127.0.0.2") is None
    assert table.find("10.1.2.3", 5060).tag == "narrow"   # longest prefix first
    assert table.find("10.1.2.3", 5070).tag == "wide"
    assert table.find("10.1.2.3", 5060, groups=(2,)).tag == "wide"
    assert table.find("192.0.2.9", 5060, "tcp").group == 4
    assert table.find("192.0.2.9", 5060, "udp") is None
    assert table.find("GW.example.com", 5061).group == 5   # names: text, never resolved
    assert table.find("gw.example.com", 5060) is None
    assert table.find("::ffff:127.0.0.1").group == 1


def test_add_and_remove_by_group_address_mask_port():
    table = AddressTable([make_entry(2, "10.0.0.0/8")])
    assert table.add(make_entry(2, "192.0.2.1", port=5060))
    assert not table.add(make_entry(2, "192.0.2.1", port=5060))
    assert table.remove(make_entry(2, "192.0.2.1").key()) == []  # port differs
    assert len(table.remove(make_entry(2, "192.0.2.1", port=5060).key())) == 1
    assert table.find("192.0.2.1", 5060) is None


def test_kamailio_address_file_sample(tmp_path: Path):
    path = tmp_path / "address.list"
    path.write_text("# address file\n1 127.0.0.1 32 0 tag1\n1 10.0.0.10\n\n"
                    "2 192.168.1.0 24 0 tag2   # trailing comment\n3 [1:5ee::900d:c0de]\n"
                    "4 10.9.0.0 16 5060 - tcp\n")
    entries = load_file(path)
    assert [(e.group, e.address, e.mask, e.port, e.tag, e.proto) for e in entries] == [
        (1, "127.0.0.1", 32, 0, "tag1", "any"), (1, "10.0.0.10", 32, 0, "", "any"),
        (2, "192.168.1.0", 24, 0, "tag2", "any"), (3, "1:5ee::900d:c0de", 128, 0, "", "any"),
        (4, "10.9.0.0", 16, 5060, "", "tcp")]
    assert all(parse_line(e.file_line()) == e for e in entries)


def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path):
    path = tmp_path / "address.list"
    path.write_text("1 127.0.0.1\nx 10.0.0.1\n")
    with pytest.raises(ValueError, match=r"address.list:2: group must be an integer"):
        load_file(path)


def test_file_edits_keep_comments_and_other_records(tmp_path: Path):
    path = tmp_path / "address.list"
    path.write_text("# carriers\n2 10.0.0.0 8\n2 192.0.2.1 32 5060 gw\n")
    append_to_file(path, make_entry(2, "198.51.100.0/24", tag="new"))
    assert remove_from_file(path, make_entry(2, "192.0.2.1", port=5060).key()) == 1
    assert path.read_text() == "# carriers\n2 10.0.0.0 8\n2 198.51.100.0 24 0 new\n"


# -- the relay policy's checks, in process ---------------------------------------------------

#: The address the Route entries of these requests name as "this router".
US = "127.0.0.1:5999"


def _policy_api(secret: str):
    """The permissions API of a router (not running) that takes US for itself."""
    from kamrouter.core.router import Router
    from kamrouter.core.settings import Settings
    from kamrouter.net import Endpoint

    settings = Settings()
    settings.core.listen = ["udp:127.0.0.1:0"]
    settings.modules["permissions"] = {"record_route_secret": secret}
    router = Router(settings)
    router.transports.close()
    router.proxy.identity.add(Endpoint("udp", "127.0.0.1", 5999))
    return router.modules["permissions"].api()


def _request(source: str, ruri: str, *, route: str = "", contact: str = ""):
    from kamrouter.net import Endpoint
    from kamrouter.script.message import ScriptMessage
    from kamrouter.sip import parse

    text = (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {source}:5060;branch=z9hG4bK1\r\n"
            f"From: <sip:a@{source}>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: dialog-1\r\n"
            f"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            + (f"Route: {route}\r\n" if route else "")
            + (f"Contact: {contact}\r\n" if contact else "") + "Content-Length: 0\r\n\r\n")
    return ScriptMessage(parse(text.encode()), Endpoint("udp", source, 5060), None)


def test_a_signed_contact_lets_only_requests_to_it_through():
    api = _policy_api("a secret longer than the 32 bytes a blake2s key may have")
    invite = _request("127.0.0.1", "sip:callee@192.0.2.5",
                      contact="<sip:caller@127.0.0.1:5070>")
    token = api.contact_token(invite)
    assert token.startswith(";tc=")
    assert api.contact_token(_request("192.0.2.5", f"sip:x@{US}",
                                      contact="<sip:caller@127.0.0.1:5070>")) == ""
    back = _request("192.0.2.5", "sip:caller@127.0.0.1:5070",
                    route=f"<sip:{US};lr{token}>")
    assert api.allow_destination(back)
    elsewhere = _request("192.0.2.5", "sip:caller@127.0.0.1:6379",
                         route=f"<sip:{US};lr{token}>")
    assert not api.allow_destination(elsewhere)
    assert not _policy_api("another secret").allow_destination(back)
