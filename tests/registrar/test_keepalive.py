"""nathelper keepalives: OPTIONS to a NATed binding's received address every
natping_interval; a binding that stops answering is removed after keepalive_timeout."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Phone, RegistrarRouter, add_users


@pytest.fixture
def pinging_router(tmp_path: Path) -> Iterator[RegistrarRouter]:
    process = RegistrarRouter(tmp_path / "router", nathelper={
        "natping_interval": 1, "keepalive_timeout": 3}).start()
    try:
        yield process
    finally:
        process.stop()


def test_nated_bindings_are_pinged_and_dead_ones_removed(pinging_router: RegistrarRouter
                                                         ) -> None:
    router = pinging_router
    add_users(router, ("bob", "bobsecret"))
    phone = Phone(router, "bob", "bobsecret")
    private = ("<sip:bob@10.0.0.7:5060>",)  # behind "NAT": received is the phone's socket
    assert phone.register(contacts=private).startswith("SIP/2.0 200")
    for _ in range(2):  # two keepalives, answered
        text = phone.sock.recv(65535).decode()  # bounded by the socket's 5 s timeout
        assert text.startswith("OPTIONS sip:bob@10.0.0.7:5060 SIP/2.0"), text
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [line for line in head[1:] if line.split(":", 1)[0].lower() in
                ("via", "from", "to", "call-id", "cseq")]
        reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        phone.sock.sendto(reply.encode(), ("127.0.0.1", router.port))
    phone.sock.close()  # the phone is gone: nothing answers any more
    deadline = time.monotonic() + 20
    while router.kamcli_ok("ul", "show"):
        assert time.monotonic() < deadline, "the dead binding was never removed"
        time.sleep(0.2)
    stats = router.kamcli_ok("stats", "nathelper:")
    assert stats["nathelper:keepalives_answered"] >= 2
    assert stats["nathelper:bindings_removed"] == 1
    assert stats["nathelper:keepalives_failed"] >= 1
    # a binding not behind NAT is not pinged
    plain = Phone(router, "bob", "bobsecret")
    assert plain.register().startswith("SIP/2.0 200")
    with pytest.raises(socket.timeout):
        plain.sock.settimeout(2.5)
        plain.sock.recv(65535)
    assert router.kamcli_ok("ul", "show", "bob")
