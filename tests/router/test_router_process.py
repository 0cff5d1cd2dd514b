"""A real kamrouter process fed raw SIP over UDP: bad input, script failures, async hooks,
script reload, DNS failures, and ``--check``."""
from __future__ import annotations

import json
import signal
import socket
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_binary, kamrouter_proxy
from support.wait import TIMEOUT, WaitTimeout, wait_until

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "rfc4475"


class SipClient:
    """A UDP socket that sends raw requests and collects what comes back."""

    def __init__(self, proxy_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.proxy = (LOOPBACK, proxy_port)

    def request(self, method: str, ruri: str, *, call_id: str = "call-1", cseq: str = "1",
                branch: str = "z9hG4bKtest1", to_tag: str | None = None, extra: str = ""
                ) -> bytes:
        to_param = f";tag={to_tag}" if to_tag else ""
        return (f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch={branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:alice@{LOOPBACK}>;tag=a1\r\n"
                f"To: <{ruri}>{to_param}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"{extra}Content-Length: 0\r\n\r\n").encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.proxy)

    def replies(self, wait: float = TIMEOUT, until_final: bool = True) -> list[str]:
        """Status lines received within ``wait`` s (stop at the first final if asked: then
        ``wait`` only bounds a failure, so it is generous by default)."""
        lines: list[str] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            line = self._status_line(left)
            if line is None:
                break
            lines.append(line)
            if until_final and not line.startswith("SIP/2.0 1"):
                break
        return lines

    def until(self, prefix: str, timeout: float = TIMEOUT) -> list[str]:
        """Status lines up to the first that starts with ``prefix``; WaitTimeout if none
        comes within ``timeout`` s (a loaded machine may answer late, never wrongly)."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._status_line(left)
            if line is not None:
                lines.append(line)
                if line.startswith(prefix):
                    return lines
        raise WaitTimeout(f"no {prefix!r} within {timeout:g} s; got {lines}")

    def _status_line(self, wait: float) -> str | None:
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65535)
        except TimeoutError:
            return None
        return data.split(b"\r\n", 1)[0].decode(errors="replace")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[tuple[ProxyProcess, SipClient]] = []

    def start_router(script: str, **tm: int) -> tuple[ProxyProcess, SipClient]:
        proxy = kamrouter_proxy(tmp_path / f"router{len(started)}", free_port(), script=script,
                                tm=tm or None).start()
        client = SipClient(proxy.port)
        started.append((proxy, client))
        return proxy, client

    yield start_router
    for proxy, client in started:
        client.close()
        proxy.stop()
        log = proxy.log_path.read_text(errors="replace")
        # Every traceback is one the test provoked: a script error, announced as such.
        assert log.count("Traceback") == log.count("routing script raised"), log[-4000:]


ANSWER_ALL = '''
from kamrouter.script import sanity, sl

def request_route(msg):
    if not sanity.check(msg):
        return
    if msg.method != "ACK":
        sl.send_reply(msg, 200, "OK")
'''


def test_malformed_request_gets_400_naming_the_problem(start) -> None:
    proxy, client = start(ANSWER_ALL)
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", cseq="99999999999"))
    (reply,) = client.replies()
    assert reply.startswith("SIP/2.0 400 ") and "CSeq" in reply
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="call-2"))
    assert client.replies() == ["SIP/2.0 200 OK"]


def test_unsupported_uri_scheme_gets_416(start) -> None:
    proxy, client = start(ANSWER_ALL)
    client.send(client.request("OPTIONS", "mailto:bob@example.com"))
    (reply,) = client.replies()
    assert reply.startswith("SIP/2.0 416")


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="shared/conformance not beside the repo")
def test_torture_messages_never_hurt_the_router(start) -> None:
    proxy, client = start(ANSWER_ALL)
    for path in sorted(CONFORMANCE.glob("*.dat")):
        client.send(path.read_bytes())
    # Answers to the torture messages may still come: wait for the one to this request.
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="alive"))
    client.until("SIP/2.0 200 OK")
    assert proxy.running()
    assert "Traceback" not in proxy.log_tail()


def test_script_exception_answers_500_and_router_keeps_running(start) -> None:
    proxy, client = start('''
from kamrouter.script import sl

def request_route(msg):
    if msg.call_id == "boom":
        raise RuntimeError("operator bug")
    sl.send_reply(msg, 200, "OK")
''')
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="boom"))
    (reply,) = client.replies()
    assert reply.startswith("SIP/2.0 500")
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="fine"))
    assert client.replies() == ["SIP/2.0 200 OK"]
    assert "RuntimeError: operator bug" in proxy.log_tail()


def test_async_route_parks_the_transaction_and_absorbs_retransmissions(start) -> None:
    proxy, client = start('''
import trio
from kamrouter.script import sl

runs = 0

async def request_route(msg):
    global runs
    runs += 1
    await trio.sleep(0.6)
    sl.send_reply(msg, 486, f"Busy after {runs} run(s)")
''')
    invite = client.request("INVITE", f"sip:bob@{LOOPBACK}")
    client.send(invite)
    assert client.until("SIP/2.0") == ["SIP/2.0 100 Trying"]
    client.send(invite)  # a retransmission while the script awaits
    replies = client.replies()
    assert replies[-1] == "SIP/2.0 486 Busy after 1 run(s)"


def test_a_plain_route_that_returns_a_coroutine_parks_only_that_request(start) -> None:
    """In-dialog requests are routed at once; a new call waits for its async sub-route, and
    the call's next request (same Call-ID) waits behind it, in arrival order."""
    proxy, client = start('''
import trio
from kamrouter.script import sl

def request_route(msg):
    if msg.method == "INVITE":
        return ask_slowly(msg)
    sl.send_reply(msg, 200, "Routed at once")

async def ask_slowly(msg):
    await trio.sleep(3.0)  # what the in-dialog request must not wait for, with a margin
    sl.send_reply(msg, 486, "Busy after waiting")
''')
    invite = client.request("INVITE", f"sip:bob@{LOOPBACK}", call_id="slow")
    client.send(invite)
    assert client.until("SIP/2.0") == ["SIP/2.0 100 Trying"]
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="other"))
    assert client.until("SIP/2.0") == ["SIP/2.0 200 Routed at once"]
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="slow",
                               branch="z9hG4bKsame-call"))
    # The 486 comes first (and is retransmitted, no ACK), then the request behind it.
    replies = client.until("SIP/2.0 200")
    assert replies[0] == "SIP/2.0 486 Busy after waiting"
    assert set(replies[:-1]) == {"SIP/2.0 486 Busy after waiting"}


def test_sighup_reloads_the_script(start, tmp_path: Path) -> None:
    proxy, client = start('''
from kamrouter.script import sl

def request_route(msg):
    sl.send_reply(msg, 480, "Version one")
''')
    client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}", call_id="v1"))
    assert client.replies() == ["SIP/2.0 480 Version one"]
    (proxy.workdir / "routes.py").write_text('''
from kamrouter.script import sl

def request_route(msg):
    sl.send_reply(msg, 481, "Version two")
''')
    proxy._process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    attempts = iter(range(1_000_000))

    def answered_by_version_two() -> bool:
        client.send(client.request("OPTIONS", f"sip:x@{LOOPBACK}",
                                   call_id=f"v2-{next(attempts)}"))
        return client.replies() == ["SIP/2.0 481 Version two"]

    wait_until(answered_by_version_two, what="the reloaded script answering",
               interval=0.1, detail=proxy.log_tail)


def test_host_names_resolve_from_static_hosts_and_unknown_ones_get_478(tmp_path: Path) -> None:
    """No DNS traffic leaves the machine here: ``[core] dns = false`` with static hosts."""
    port = free_port()
    callee = SipClient(port)
    proxy = kamrouter_proxy(tmp_path, port, sections={"core": {
        "listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}"], "dns": False,
        "hosts": {"callee.test": LOOPBACK}}}, script=f'''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = "sip:" + msg.get_header("X-Host") + ":{callee.port}"
    tm.relay(msg)
''').start()
    client = SipClient(port)
    try:
        client.send(client.request("OPTIONS", "sip:bob@callee.test", call_id="unknown",
                                   extra="X-Host: no-such-host.test\r\n"))
        (reply,) = client.replies()
        assert reply.startswith("SIP/2.0 478")
        client.send(client.request("OPTIONS", "sip:bob@callee.test", call_id="static",
                                   branch="z9hG4bKtest2", extra="X-Host: callee.test\r\n"))
        callee.sock.settimeout(TIMEOUT)
        assert callee.sock.recv(65535).startswith(b"OPTIONS sip:bob@callee.test SIP/2.0")
    finally:
        client.close()
        callee.close()
        proxy.stop()


def check(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "kamrouter.toml"
    config.write_text(toml)
    return subprocess.run([kamrouter_binary(), "--check", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    result = check(tmp_path, '[core]\nlisten = ["udp:127.0.0.1:5090"]\n[tm]\nfr_inv_timer = 60000\n')
    assert result.returncode == 0, result.stderr


def test_check_names_every_problem(tmp_path: Path) -> None:
    result = check(tmp_path, '[core]\nlisten = ["sctp:1.2.3.4"]\n'
                             '[tm]\nfr_timer = "soon"\nfr_timr = 1\n'
                             '[routing]\nscript = "missing.py"\n'
                             '[rpc]\nhttp = "localhost:notaport"\nmode = 0o7777\n')
    assert result.returncode == 1
    for expected in ("core.listen[0]", "tm.fr_timer: expected integer",
                     "tm: unknown key 'fr_timr' (did you mean 'fr_timer'?)",
                     "rpc.http: expected [host:]port", "rpc.mode: expected a permission mode"):
        assert expected in result.stderr
    result = check(tmp_path, '[routing]\nscript = "missing.py"\n')
    assert result.returncode == 1 and "missing.py: routing script not found" in result.stderr


def test_check_reports_script_syntax_errors_with_line(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def request_route(msg):\n    return (\n")
    result = check(tmp_path, '[routing]\nscript = "bad.py"\n')
    assert result.returncode == 1 and "bad.py:" in result.stderr


ETC = Path(__file__).resolve().parents[2] / "etc"


@pytest.mark.parametrize("config", sorted(ETC.rglob("*.toml")),
                         ids=lambda p: str(p.relative_to(ETC)))
def test_shipped_configs_pass_check(config: Path, tmp_path: Path) -> None:
    if config.name in ("tls.toml", "webrtc.toml"):  # the walkthrough makes the certificates
        etc = tmp_path / "etc"
        shutil.copytree(ETC, etc)
        subprocess.run(["sh", str(etc / "tls/make-test-certs.sh")], check=True,
                       capture_output=True, timeout=60)
        config = etc / config.name
    result = subprocess.run([kamrouter_binary(), "--check", "-c", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_tls_config_without_certificates_names_the_files(tmp_path: Path) -> None:
    result = check(tmp_path, '[core]\nlisten = ["tls:127.0.0.1:5061"]\n\n[[tls.server]]\n'
                   'certificate = "missing.pem"\nprivate_key = "missing.key"\n')
    assert result.returncode == 1
    assert "tls.server[0]: cannot load" in result.stderr and "missing.pem" in result.stderr


def test_request_looping_back_unchanged_gets_482(tmp_path: Path) -> None:
    port = free_port()
    proxy = kamrouter_proxy(tmp_path, port, script=f'''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = "sip:{LOOPBACK}:{port}"  # a misconfigured next hop: ourselves
    tm.relay(msg)
''').start()
    client = SipClient(port)
    try:
        client.send(client.request("OPTIONS", "sip:bob@example.com"))
        replies = client.replies()
        assert replies and replies[-1].startswith("SIP/2.0 482")
    finally:
        client.close()
        proxy.stop()


def test_via_gets_received_and_rport_for_the_next_hop(start) -> None:
    """RFC 3581: the forwarded request's client Via says where it really came from."""
    proxy, client = start('''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = msg.get_header("X-Next-Hop")
    tm.relay(msg)
''')
    callee = SipClient(proxy.port)
    request = client.request("OPTIONS", f"sip:bob@{LOOPBACK}",
                             extra=f"X-Next-Hop: sip:{LOOPBACK}:{callee.port}\r\n")
    client.send(request.replace(f"{LOOPBACK}:{client.port};branch".encode(),
                                b"client.invalid:5060;rport;branch"))
    callee.sock.settimeout(TIMEOUT)
    relayed = callee.sock.recv(65535).decode()
    callee.close()
    client_via = [line for line in relayed.split("\r\n") if line.startswith("Via:")][1]
    assert f";rport={client.port}" in client_via and f";received={LOOPBACK}" in client_via


def kamcli_stats(proxy: ProxyProcess, selector: str) -> dict[str, int]:
    result = subprocess.run([str(Path(kamrouter_binary()).parent / "kamcli"), "-s",
                             str(proxy.workdir / "run" / "kamrouter_rpc.sock"), "-o", "json",
                             "stats", selector], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reply_whose_top_via_is_not_ours_is_dropped_and_counted(start) -> None:
    proxy, client = start(ANSWER_ALL)
    stray = (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKforeign\r\n"
             f"Via: SIP/2.0/UDP {LOOPBACK}:{client.port};branch=z9hG4bKx\r\n"
             f"From: <sip:a@{LOOPBACK}>;tag=1\r\nTo: <sip:b@{LOOPBACK}>;tag=2\r\n"
             f"Call-ID: stray\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    client.send(stray)
    wait_until(lambda: kamcli_stats(proxy, "core:drop_replies")["core:drop_replies"] == 1,
               what="the stray reply counted as dropped", interval=0.1)
    assert client.replies(0.2) == []  # and nothing was sent for it


def test_strict_router_request_uri_is_restored_from_the_route_set(start) -> None:
    """RFC 3261 §16.4: a strict router put our Record-Route URI into the Request-URI."""
    proxy, client = start(None)
    callee = SipClient(proxy.port)
    client.send(client.request("BYE", f"sip:{LOOPBACK}:{proxy.port};lr", to_tag="b",
                               extra=f"Route: <sip:bob@{LOOPBACK}:{callee.port}>\r\n"))
    callee.sock.settimeout(TIMEOUT)
    relayed = callee.sock.recv(65535).decode()
    callee.close()
    assert relayed.startswith(f"BYE sip:bob@{LOOPBACK}:{callee.port} SIP/2.0")
    assert "\r\nRoute:" not in relayed


def test_config_with_only_an_htable_is_valid(tmp_path: Path) -> None:
    result = check(tmp_path, '[[htable]]\nname = "bans"\n')
    assert result.returncode == 0, result.stderr


def test_transaction_counters_after_a_relayed_request(start) -> None:
    proxy, client = start('''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = msg.get_header("X-Next-Hop")
    tm.relay(msg)
''')
    callee = SipClient(proxy.port)
    client.send(client.request("OPTIONS", f"sip:bob@{LOOPBACK}",
                               extra=f"X-Next-Hop: sip:{LOOPBACK}:{callee.port}\r\n"))
    callee.sock.settimeout(TIMEOUT)
    relayed = callee.sock.recv(65535).decode()
    head, _, _ = relayed.partition("\r\n\r\n")
    lines = head.split("\r\n")[1:]
    answer = "SIP/2.0 200 OK\r\n" + "".join(
        f"{line}\r\n" for line in lines if line.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")
    ) + "Content-Length: 0\r\n\r\n"
    callee.sock.sendto(answer.encode(), (LOOPBACK, proxy.port))
    assert client.replies() == ["SIP/2.0 200 OK"]
    callee.close()
    stats = kamcli_stats(proxy, "all")
    assert stats["tmx:UAS_transactions"] == 1 and stats["tmx:2xx_transactions"] == 1
    assert stats["core:rcv_requests"] == 1 and stats["core:fwd_requests"] == 1
    assert stats["core:rcv_replies"] == 1 and stats["core:fwd_replies"] == 1


HOLD_IN_A_RELAY = '''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = "sip:{host}:{port}"
    tm.relay(msg)
'''
HOLD_IN_A_RETURNED_COROUTINE = '''
import trio

def request_route(msg):
    return ask_slowly(msg)

async def ask_slowly(msg):
    await trio.sleep(30)
'''


@pytest.mark.parametrize("script", [HOLD_IN_A_RELAY, HOLD_IN_A_RETURNED_COROUTINE],
                         ids=["relayed to a silent callee", "parked by a returned coroutine"])
def test_transaction_limit_answers_503(start, script: str) -> None:
    silent = SipClient(0)  # a bound socket that never answers: the transaction stays
    proxy, client = start(script.format(host=LOOPBACK, port=silent.port), max_transactions=1)
    client.send(client.request("INVITE", f"sip:bob@{LOOPBACK}", call_id="first"))
    assert client.until("SIP/2.0") == ["SIP/2.0 100 Trying"]
    client.send(client.request("INVITE", f"sip:bob@{LOOPBACK}", call_id="second",
                               branch="z9hG4bKtest2"))
    assert client.until("SIP/2.0 5")[-1].startswith("SIP/2.0 503")
    silent.close()
    proxy.stop()  # flushes the router's stderr, where Python warns of a coroutine left
    assert "never awaited" not in proxy.log_tail()  # a refused request's coroutine is closed


def test_rfc2543_transactions_match_after_the_via_is_stamped(start) -> None:
    """No magic cookie: the transaction is keyed by the top Via among others. The proxy adds
    rport/received to that Via before creating the transaction, and a retransmission or
    CANCEL arrives without them: they must still match."""
    callee = SipClient(0)
    proxy, client = start(f'''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = "sip:{LOOPBACK}:{callee.port}"
    tm.relay(msg)
''')
    invite = client.request("INVITE", f"sip:bob@{LOOPBACK}", branch="old2543;rport")
    client.send(invite)
    assert client.until("SIP/2.0") == ["SIP/2.0 100 Trying"]
    client.send(invite)  # a retransmission: absorbed, the 100 replayed, nothing relayed
    assert client.until("SIP/2.0") == ["SIP/2.0 100 Trying"]
    callee.sock.settimeout(TIMEOUT)  # the first relayed copy, however late it comes
    branches = {callee.sock.recv(65535).split(b"\r\n", 2)[1]}
    callee.sock.settimeout(0.3)
    # The proxy's own retransmissions (timer A) reuse the branch id; a second transaction
    # would relay the retransmission with another one.
    while True:
        try:
            branches.add(callee.sock.recv(65535).split(b"\r\n", 2)[1])
        except TimeoutError:
            break
    assert len(branches) == 1, f"relayed as more than one transaction: {branches}"
    client.send(invite.replace(b"INVITE", b"CANCEL"))
    client.until("SIP/2.0 200 canceling")
    callee.close()
