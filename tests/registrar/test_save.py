"""registrar save()/lookup semantics on a usrloc table with a fake clock (sans-IO)."""
from __future__ import annotations

import pytest

from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.registrar.save import Details, SaveResult, save
from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.sip import Request, parse


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def register(*contacts: str, expires: str | None = None, call_id: str = "c1", cseq: int = 1,
             extra: str = "") -> Request:
    lines = ["REGISTER sip:example.com SIP/2.0",
             "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
             "From: <sip:alice@example.com>;tag=a", "To: <sip:alice@example.com>",
             f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER", "Max-Forwards: 70"]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if extra:
        lines.append(extra)
    lines.append("Content-Length: 0")
    msg = parse(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


@pytest.fixture
def table() -> Location:
    return Location("location", Clock())


def run(table: Location, req: Request, cfg: RegistrarConfig | None = None, mode: int = 0):
    return save(req, table, Details("alice", socket="udp:127.0.0.1:5060", matching_mode=mode),
                cfg or RegistrarConfig())


def contacts_of(reply) -> list[str]:
    return [v for n, v in reply.headers if n == "Contact"]


def test_insert_update_and_expires_bounds(table: Location) -> None:
    reply = run(table, register("<sip:alice@10.0.0.1:5070>"))
    assert (reply.status, reply.code) == (200, SaveResult.INSERTED)
    assert contacts_of(reply) == ["<sip:alice@10.0.0.1:5070>;expires=3600"]
    reply = run(table, register("<sip:alice@10.0.0.1:5070>;expires=10", cseq=2))
    assert reply.code == SaveResult.UPDATED  # raised to min_expires (mode 0)
    assert contacts_of(reply) == ["<sip:alice@10.0.0.1:5070>;expires=60"]
    cfg = RegistrarConfig(min_expires_mode=1, max_expires=600)
    reply = run(table, register("<sip:alice@10.0.0.1:5070>", expires="30", cseq=3), cfg)
    assert (reply.status, reply.headers) == (423, [("Min-Expires", "60")])
    reply = run(table, register("<sip:alice@10.0.0.1:5070>", expires="7200", cseq=4), cfg)
    assert contacts_of(reply) == ["<sip:alice@10.0.0.1:5070>;expires=600"]
    assert len(table.bindings("alice")) == 1


def test_expired_bindings_are_invisible_and_swept(table: Location) -> None:
    run(table, register("<sip:alice@10.0.0.1>", expires="60"))
    table.clock.now += 59  # type: ignore[attr-defined]
    assert table.bindings("alice")
    table.clock.now += 1  # type: ignore[attr-defined]
    assert table.bindings("alice") == [] and table.count_contacts() == 0
    assert [aor for aor, _ in table.expire_due()] == ["alice"]
    assert table.records == {}


def test_q_order_and_star_removal(table: Location) -> None:
    run(table, register("<sip:a@10.0.0.1>;q=0.5", "<sip:b@10.0.0.2>;q=1", "<sip:c@10.0.0.3>"))
    assert [b.contact for b in table.bindings("alice")] == ["sip:b@10.0.0.2", "sip:a@10.0.0.1",
                                                            "sip:c@10.0.0.3"]
    reply = run(table, register("<sip:a@10.0.0.1>", expires="60", cseq=2))  # query-less update
    assert "<sip:b@10.0.0.2>;expires=3600;q=1" in contacts_of(reply)
    assert run(table, register("*", expires="10", cseq=3)).status == 400
    assert run(table, register("*", cseq=3)).status == 400  # * needs Expires: 0
    reply = run(table, register("*", expires="0", cseq=3))
    assert (reply.status, reply.code, contacts_of(reply)) == (200, SaveResult.DELETED, [])
    assert table.bindings("alice") == []


def test_invalid_q_and_expires_are_400(table: Location) -> None:
    assert run(table, register("<sip:a@10.0.0.1>;q=2")).status == 400
    assert run(table, register("<sip:a@10.0.0.1>", expires="soon")).status == 400
    assert run(table, register("<sip:a@10.0.0.1>;expires=x")).status == 400
    assert table.records == {}


def test_call_id_cseq_ordering(table: Location) -> None:
    run(table, register("<sip:a@10.0.0.1>", cseq=5))
    reply = run(table, register("<sip:a@10.0.0.1>", expires="0", cseq=4))  # older: ignored
    assert reply.status == 200 and len(table.bindings("alice")) == 1
    run(table, register("<sip:a@10.0.0.1>", expires="0", call_id="other", cseq=1))
    assert table.bindings("alice") == []  # another Call-ID may remove it


def test_instance_reg_id_replace_only_their_own(table: Location) -> None:
    inst = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    run(table, register(f"<sip:a@10.0.0.1:1111>;+sip.instance={inst};reg-id=1",
                        f"<sip:a@10.0.0.1:2222>;+sip.instance={inst};reg-id=2"))
    reply = run(table, register(f"<sip:a@192.0.2.1:3333>;+sip.instance={inst};reg-id=1",
                                call_id="new"))
    assert sorted(b.contact for b in table.bindings("alice")) == [
        "sip:a@10.0.0.1:2222", "sip:a@192.0.2.1:3333"]
    assert ("Require", "outbound") in reply.headers
    assert any('reg-id=1' in c and "+sip.instance" in c for c in contacts_of(reply))


def test_max_contacts(table: Location) -> None:
    cfg = RegistrarConfig(max_contacts=2, retry_after=30)
    run(table, register("<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"), cfg)
    reply = run(table, register("<sip:c@10.0.0.3>", cseq=2, call_id="c2"), cfg)
    assert (reply.status, reply.code) == (503, SaveResult.TOO_MANY_CONTACTS)
    assert ("Retry-After", "30") in reply.headers
    # replacing one within the limit is fine
    reply = run(table, register("<sip:a@10.0.0.1>;expires=0", "<sip:c@10.0.0.3>", cseq=2), cfg)
    assert reply.status == 200
    assert [b.contact for b in table.bindings("alice")] == ["sip:b@10.0.0.2", "sip:c@10.0.0.3"]


def test_path_stored_and_echoed_when_supported(table: Location) -> None:
    cfg = RegistrarConfig(use_path=True)
    req = register("<sip:a@10.0.0.1>", extra="Path: <sip:edge.example.com;lr>\r\nSupported: path")
    reply = run(table, req, cfg)
    assert ("Path", "<sip:edge.example.com;lr>") in reply.headers
    assert table.bindings("alice")[0].path == "<sip:edge.example.com;lr>"
    cfg = RegistrarConfig(use_path=True, path_mode="strict")
    req = register("<sip:b@10.0.0.1>", extra="Path: <sip:edge.example.com;lr>")
    assert run(table, req, cfg).status == 420


def test_binding_row_round_trip() -> None:
    binding = Binding("sip:a@10.0.0.1", 123.0, 500, "cid", 3, "<sip:p;lr>", "sip:1.2.3.4:5",
                      "udp:127.0.0.1:5060", "ua", "urn:x", 1, 2, 3, 4, "ruid-1", 99.0)
    assert Binding.from_row(binding.as_row()).as_row() == binding.as_row()
