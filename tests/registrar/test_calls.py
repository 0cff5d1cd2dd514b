"""Calls through the shipped registrar example with sipp phones: registration with sipp's
[authentication] (MD5), an authenticated call between two users, serial forking by q and
parallel forking within equal q, Path, a phone behind NAT, bindings after kill -9, strangers
refused, and the reference kamcli's `ul show` against kamrouter."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from support.ports import free_port
from support.sipp import Sipp

from .conftest import DOMAIN, ETC, Phone, RegistrarRouter, add_users

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
SIPP = ETC / "sipp"


def sipp_phone(router: RegistrarRouter, workdir: Path, scenario: str, user: str,
               password: str, port: int, *extra: str) -> Sipp:
    name = f"{Path(scenario).stem}-{user}-{port}"
    return Sipp(name, str(SIPP / scenario), workdir, port=port, remote=router.address,
                timeout_s=15, trace_messages=True,
                extra_args=("-s", user, "-au", user, "-ap", password, *extra))


def run_ok(sipp: Sipp, router: RegistrarRouter) -> None:
    result = sipp.start().wait()
    assert result.ok, result.report() + "\n" + router.process.log_tail()


def test_two_sipp_phones_register_and_call(router: RegistrarRouter, tmp_path: Path) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    bob_port, alice_port = free_port(), free_port()
    run_ok(sipp_phone(router, tmp_path, "register.xml", "bob", "bobsecret", bob_port), router)
    run_ok(sipp_phone(router, tmp_path, "register.xml", "alice", "alicesecret", alice_port),
           router)
    assert sorted(r["aor"] for r in router.kamcli_ok("ul", "show")) == ["alice", "bob"]
    bob = Sipp("bob-answers", "uas.xml", tmp_path, port=bob_port, timeout_s=15).start()
    bob.wait_listening()
    try:
        run_ok(sipp_phone(router, tmp_path, "caller.xml", "alice", "alicesecret", alice_port,
                          "-key", "callee", "bob"), router)
        assert bob.wait().ok
    finally:
        bob.kill()
    # a wrong password is refused (sipp expects the 401 and then a 200: it fails on the 403)
    wrong = sipp_phone(router, tmp_path, "register.xml", "alice", "guess", free_port())
    assert not wrong.start().wait().ok
    assert router.kamcli_ok("stats", "auth:invalid_password")["auth:invalid_password"] == 1


def _register_contacts(router: RegistrarRouter, user: str, *contacts: str,
                       extra: tuple[str, ...] = ()) -> None:
    phone = Phone(router, user, f"{user}secret")
    reply = phone.register(contacts=contacts, extra=extra)
    assert reply.startswith("SIP/2.0 200"), reply
    phone.close()


def call_bob(router: RegistrarRouter, tmp_path: Path, *callees: Sipp) -> None:
    for callee in callees:
        callee.start()
    for callee in callees:
        callee.wait_listening()
    try:
        run_ok(sipp_phone(router, tmp_path, "caller.xml", "alice", "alicesecret", free_port(),
                          "-key", "callee", "bob"), router)
        for callee in callees:
            result = callee.wait()
            assert result.ok, result.report()
    finally:
        for callee in callees:
            callee.kill()


def test_serial_forking_by_q(router: RegistrarRouter, tmp_path: Path) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    # q=1.0 answers: the q=0.5 contact (a bare socket here) is never rung
    answers = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as lower:
        lower.bind(("127.0.0.1", 0))
        lower.setblocking(False)
        _register_contacts(router, "bob", f"<sip:bob@127.0.0.1:{lower.getsockname()[1]}>;q=0.5",
                           f"<sip:bob@127.0.0.1:{answers}>;q=1.0")
        call_bob(router, tmp_path, Sipp("answers", "uas.xml", tmp_path, port=answers,
                                        timeout_s=15))
        with pytest.raises(BlockingIOError):
            lower.recv(65535)  # a parallel fork would have sent it with the first INVITE
    # q=1.0 busy: the call moves on to q=0.5
    busy, answers = free_port(), free_port()
    router.kamcli_ok("ul", "rm", "bob")
    _register_contacts(router, "bob", f"<sip:bob@127.0.0.1:{answers}>;q=0.5",
                       f"<sip:bob@127.0.0.1:{busy}>;q=1.0")
    call_bob(router, tmp_path, Sipp("busy", "uas_busy.xml", tmp_path, port=busy, timeout_s=15),
             Sipp("answers2", "uas.xml", tmp_path, port=answers, timeout_s=15))


def test_parallel_forking_within_equal_q(router: RegistrarRouter, tmp_path: Path) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    rings, answers = free_port(), free_port()
    _register_contacts(router, "bob", f"<sip:bob@127.0.0.1:{rings}>;q=0.5",
                       f"<sip:bob@127.0.0.1:{answers}>;q=0.5")
    ringing = Sipp("rings", "uas_ring_until_cancel.xml", tmp_path, port=rings, timeout_s=15)
    answering = Sipp("answers", "uas.xml", tmp_path, port=answers, timeout_s=15,
                     pause_ms=500, trace_messages=True)
    call_bob(router, tmp_path, ringing, answering)  # rings got the INVITE and the CANCEL


def test_path_is_the_route_set_and_nat_uses_received(router: RegistrarRouter,
                                                     tmp_path: Path) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    edge = free_port()  # an "edge proxy": a sipp UAS that answers what reaches it
    _register_contacts(router, "bob", "<sip:bob@192.0.2.10:5060>",
                       extra=(f"Path: <sip:127.0.0.1:{edge};lr>", "Supported: path"))
    stored = router.kamcli_ok("ul", "show", "bob")
    assert stored[0]["path"] == f"<sip:127.0.0.1:{edge};lr>"
    uas = Sipp("edge", "uas.xml", tmp_path, port=edge, timeout_s=15, trace_messages=True)
    call_bob(router, tmp_path, uas)
    invite = uas.result.received("INVITE")[0]
    assert invite.first_line.startswith("INVITE sip:bob@192.0.2.10:5060")
    assert f"<sip:127.0.0.1:{edge};lr>" in invite.headers("Route")

    # behind NAT: Contact and Via say 10.0.0.7, the datagrams come from 127.0.0.1:<port>
    nated = Phone(router, "bob", "bobsecret")
    router.kamcli_ok("ul", "rm", "bob")
    private = ("<sip:bob@10.0.0.7:5060>",)
    challenge = nated.request(contacts=private)
    auth = nated.authorization(challenge, "REGISTER", f"sip:{DOMAIN}")
    assert nated.request(contacts=private, authorization=auth).startswith("SIP/2.0 200")
    row = router.kamcli_ok("ul", "show", "bob")[0]
    assert (row["contact"], row["received"]) == (
        "sip:bob@10.0.0.7:5060", f"sip:127.0.0.1:{nated.port};transport=udp")
    nated.sock.close()
    uas = Sipp("nat", "uas.xml", tmp_path, port=nated.port, timeout_s=15, trace_messages=True)
    call_bob(router, tmp_path, uas)  # reached at the received address
    assert uas.result.received("INVITE")[0].first_line.startswith(
        "INVITE sip:bob@10.0.0.7:5060")


def test_strangers_are_not_relayed(router: RegistrarRouter) -> None:
    stranger = Phone(router, "eve", "x")
    reply = stranger.request("INVITE", ruri="sip:someone@203.0.113.9", expires=None)
    # From eve@example.com: must authenticate first
    assert reply.startswith("SIP/2.0 407")
    lines = stranger.last_sent.decode().replace(f"@{DOMAIN}>;tag", "@evil.example>;tag", 1)
    stranger.sock.sendto(lines.replace("CSeq: 1", "CSeq: 2").encode(),
                         ("127.0.0.1", router.port))
    assert stranger.final_reply().startswith("SIP/2.0 403 Relaying Forbidden")


def test_bindings_survive_kill_9(router: RegistrarRouter) -> None:
    add_users(router, ("bob", "bobsecret"))
    _register_contacts(router, "bob", "<sip:bob@127.0.0.1:5999>;q=0.7")
    os.kill(router.process.pid, signal.SIGKILL)
    router.stop()
    router.start()
    rows = router.kamcli_ok("ul", "show")
    assert [(r["aor"], r["contact"], r["q"]) for r in rows] == [
        ("bob", "sip:bob@127.0.0.1:5999", 0.7)]
    assert 3500 < rows[0]["expires"] <= 3600


@pytest.mark.skipif(not Path("/usr/bin/kamcli").exists(), reason="reference kamcli missing")
def test_reference_kamcli_ul_show(router: RegistrarRouter, tmp_path: Path) -> None:
    add_users(router, ("bob", "bobsecret"))
    _register_contacts(router, "bob", "<sip:bob@127.0.0.1:5999>")
    config = tmp_path / "kamcli.ini"
    config.write_text(f"[ctl]\ntype = jsonrpc\n[jsonrpc]\ntransport = socket\n"
                      f"srvaddr = {router.workdir / 'run' / 'kamrouter_rpc.dgram'}\n"
                      f"rcvaddr = {tmp_path / 'kamcli_reply.sock'}\noutformat = json\n")
    done = subprocess.run(["/usr/bin/kamcli", "--no-default-configs", "-c", str(config),
                           "ul", "show"],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sip:bob@127.0.0.1:5999" in done.stdout
    done = subprocess.run(["/usr/bin/kamcli", "--no-default-configs", "-c", str(config),
                           "ul", "show", f"bob@{DOMAIN}"], capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0 and "sip:bob@127.0.0.1:5999" in done.stdout, done.stdout
