"""SIP over TLS against a real router: handshake, SNI, certificate checks, mutual TLS, and
requests relayed between TLS and UDP. Clients are Python's ssl on 127.0.0.1."""
from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy


def options(port: int, transport: str = "TLS") -> bytes:
    return (f"OPTIONS sip:{LOOPBACK}:{port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {LOOPBACK}:5999;branch=z9hG4bK-tls-{port}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@localhost>;tag=1\r\n"
            f"To: <sip:{LOOPBACK}:{port}>\r\nCall-ID: tls-{port}@test\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def start_router(tmp_path: Path, certs: Path, **server: object) -> ProxyProcess:
    port = free_port()
    tls_port = free_port()
    profile = {"certificate": str(certs / "server.pem"), "private_key": str(certs / "server.key"),
               **server}
    proxy = kamrouter_proxy(tmp_path / "router", port, sections={
        "core": {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                            f"tls:{LOOPBACK}:{tls_port}"]}})
    # kamrouter_proxy writes plain tables; the server profiles are an array of tables.
    config = proxy.argv[-1]
    with open(config, "a") as file:
        file.write("\n[[tls.server]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in profile.items())
                   + "\n[[tls.server]]\n" + f'server_name = "other.localhost"\n'
                   f'certificate = "{certs / "other.pem"}"\nprivate_key = "{certs / "other.key"}"\n')
    proxy.tls_port = tls_port  # type: ignore[attr-defined]
    return proxy.start()


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def ask(proxy: ProxyProcess, context: ssl.SSLContext, server_name: str = "localhost"
        ) -> tuple[bytes, dict]:
    port = proxy.tls_port  # type: ignore[attr-defined]
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            peer = tls.getpeercert()
            tls.sendall(options(port))
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = tls.recv(65535)
                if not chunk:
                    break
                reply += chunk
            return reply, peer


@pytest.fixture
def router(tmp_path: Path, certs: Path):
    proxy = start_router(tmp_path, certs)
    yield proxy
    proxy.stop()


def test_a_verified_client_gets_its_answer_over_tls(router, certs):
    reply, peer = ask(router, client_context(certs / "ca.pem"))
    assert reply.startswith(b"SIP/2.0 200"), reply
    assert dict(x[0] for x in peer["subject"])["commonName"] == "localhost"


def test_sni_chooses_the_certificate(router, certs):
    _, peer = ask(router, client_context(certs / "ca.pem"), server_name="other.localhost")
    assert dict(x[0] for x in peer["subject"])["commonName"] == "other.localhost"


def test_a_server_certificate_from_another_ca_is_refused(router, other_ca):
    with pytest.raises(ssl.SSLCertVerificationError):
        ask(router, client_context(other_ca / "ca.pem"))


def test_mutual_tls_refuses_a_client_without_certificate(tmp_path, certs):
    proxy = start_router(tmp_path, certs, verify_certificate=True, require_certificate=True,
                         ca_list=str(certs / "ca.pem"))
    try:
        reply, _ = ask(proxy, client_context(certs / "ca.pem", certs / "client.pem",
                                             certs / "client.key"))
        assert reply.startswith(b"SIP/2.0 200"), reply
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reply, _ = ask(proxy, client_context(certs / "ca.pem"))
            if not reply:  # TLS 1.3: the refusal arrives after the client's handshake ends
                raise ConnectionError("closed without an answer")
    finally:
        proxy.stop()


def test_a_stalled_handshake_is_closed(tmp_path, certs):
    proxy = start_router(tmp_path, certs)
    try:
        with socket.create_connection((LOOPBACK, proxy.tls_port), timeout=30) as raw:
            raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
            assert raw.recv(100) == b"", "the router closes it after handshake_timeout"
    finally:
        proxy.stop()


def test_tls_connections_are_listed(router, certs):
    import json
    import subprocess
    import sys
    context = client_context(certs / "ca.pem")
    with socket.create_connection((LOOPBACK, router.tls_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(options(router.tls_port))
            assert tls.recv(65535).startswith(b"SIP/2.0 200")
            kamcli = Path(sys.executable).parent / "kamcli"
            sock = router.workdir / "run" / "kamrouter_rpc.sock"
            listed = json.loads(subprocess.run(
                [str(kamcli), "-s", str(sock), "-o", "json", "tls", "list"],
                capture_output=True, text=True, timeout=30, check=True).stdout)
            assert len(listed) == 1
            assert listed[0]["peer"] == f"{LOOPBACK}:{tls.getsockname()[1]}"
            assert listed[0]["version"] in ("TLSv1.2", "TLSv1.3")
            info = json.loads(subprocess.run(
                [str(kamcli), "-s", str(sock), "-o", "json", "tls", "info"],
                capture_output=True, text=True, timeout=30, check=True).stdout)
            assert info["opened_connections"] == 1
            table = subprocess.run([str(kamcli), "-s", str(sock), "tls", "list"],
                                   capture_output=True, text=True, timeout=30, check=True).stdout
            assert "TLSv1" in table
