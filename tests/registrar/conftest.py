"""The shipped registrar example (etc/registrar.toml + etc/examples/registrar.py) as a real
router process on free ports, kamcli against it, and a small Python phone (UDP) that can
answer digest challenges with MD5 or SHA-256 (Debian's sipp knows MD5 only)."""
from __future__ import annotations

import os
import socket
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import digest
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_binary, toml_document

ETC = Path(__file__).resolve().parents[2] / "etc"
DOMAIN = "example.com"


class RegistrarRouter:
    """A shipped registrar config (etc/registrar.toml, or a node of etc/nodes/) as a router
    process on ``host`` and a free port, its control sockets in ``workdir``/run, HTTP RPC on
    a free port if the config has it, ``redis_url`` (if given) for [usrloc] and every
    Redis-backed [[htable]], then ``overrides`` (section -> keys) on top."""

    def __init__(self, workdir: Path, config: Path = ETC / "registrar.toml",
                 host: str = LOOPBACK, redis_url: str | None = None,
                 **overrides: dict[str, Any]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.host = host
        self.port = free_port()
        self.sink = free_port()  # the dispatcher set: a loopback port nobody answers on
        document = tomllib.loads(config.read_text())
        document["core"]["listen"] = [f"udp:{host}:{self.port}", f"tcp:{host}:{self.port}"]
        document["routing"]["script"] = str((config.parent / document["routing"]["script"])
                                            .resolve())
        rpc = {"run_dir": str(workdir / "run"),
               "dgram_socket": "kamrouter_rpc.dgram"}  # the reference kamcli
        self.http_url = None
        if "http" in document.get("rpc", {}):
            rpc["http"] = f"{host}:{free_port()}"
            self.http_url = f"http://{rpc['http']}/RPC"
        document["rpc"] = rpc
        (workdir / "dispatcher.list").write_text(f"1 sip:127.0.0.1:{self.sink}\n")
        document["dispatcher"]["list_file"] = str(workdir / "dispatcher.list")
        if redis_url is not None:
            document.setdefault("usrloc", {})["redis_url"] = redis_url
            for table in document.get("htable", []):
                if table.get("backend") == "redis":
                    table["redis_url"] = redis_url
        for section, values in overrides.items():
            document.setdefault(section, {}).update(values)
        (workdir / "kamrouter.toml").write_text(toml_document(document))
        self.process = ProxyProcess("kamrouter", [kamrouter_binary(), "-c",
                                                  str(workdir / "kamrouter.toml")],
                                    self.port, workdir, host=host)

    @property
    def address(self) -> str:
        return self.process.address

    @property
    def socket(self) -> str:
        return str(self.workdir / "run" / "kamrouter_rpc.sock")

    def start(self) -> RegistrarRouter:
        self.process.start()
        deadline = time.monotonic() + 15
        while "kamrouter ready" not in self.process.log_tail():
            if not self.process.running() or time.monotonic() > deadline:
                raise AssertionError(f"kamrouter not ready:\n{self.process.log_tail()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.process.stop()

    def kamcli(self, *args: str, output: str = "json", http: bool = False) -> Any:
        """kamcli on the control socket (``http``: on the HTTP RPC, ``-u``)."""
        from click.testing import CliRunner

        from kamcli.main import cli

        target = ["-u", self.http_url] if http and self.http_url else ["-s", self.socket]
        return CliRunner().invoke(cli, [*target, "-o", output, *args], prog_name="kamcli")

    def kamcli_ok(self, *args: str, output: str = "json", http: bool = False) -> Any:
        import json

        result = self.kamcli(*args, output=output, http=http)
        assert result.exit_code == 0, (args, result.output, self.process.log_tail())
        return json.loads(result.stdout) if output == "json" and result.stdout.strip() \
            else result.stdout


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RegistrarRouter]:
    process = RegistrarRouter(tmp_path / "router").start()
    try:
        yield process
    finally:
        process.stop()


def add_users(router: RegistrarRouter, *users: tuple[str, str]) -> None:
    for user, password in users:
        router.kamcli_ok("subscriber", "add", f"{user}@{DOMAIN}", password)


# -- a phone in Python ---------------------------------------------------------------------------
class Phone:
    """A UDP phone on 127.0.0.1 that sends requests to the router and reads replies."""

    def __init__(self, router: RegistrarRouter, user: str, password: str) -> None:
        self.router = router
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.call_id = os.urandom(8).hex()
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str = "REGISTER", *, contacts: tuple[str, ...] | None = None,
                expires: int | None = 3600, authorization: str | None = None,
                ruri: str = f"sip:{DOMAIN}", to_user: str | None = None,
                extra: tuple[str, ...] = (), cseq: int | None = None) -> str:
        """Send one request; return the final reply's text (provisional ones skipped)."""
        self.cseq = cseq if cseq is not None else self.cseq + 1
        branch = "z9hG4bK" + os.urandom(6).hex()
        to_user = to_user or self.user
        if contacts is None:
            contacts = (f"<sip:{self.user}@127.0.0.1:{self.port}>",)
        lines = [f"{method} {ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
                 f"From: <sip:{self.user}@{DOMAIN}>;tag=t{self.port}",
                 f"To: <sip:{to_user}@{DOMAIN}>", f"Call-ID: {self.call_id}",
                 f"CSeq: {self.cseq} {method}", "Max-Forwards: 70"]
        lines += [f"Contact: {c}" for c in contacts]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization:
            lines.append(authorization)
        lines += list(extra)
        lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.last_sent = data
        self.sock.sendto(data, (self.router.host, self.router.port))
        return self.final_reply()

    def resend(self) -> str:
        self.sock.sendto(self.last_sent, (self.router.host, self.router.port))
        return self.final_reply()

    def final_reply(self) -> str:
        while True:
            text = self.sock.recv(65535).decode()
            if not text.startswith("SIP/2.0 1"):
                return text

    def authorization(self, challenge_reply: str, method: str, uri: str,
                      algorithm: str = "MD5", nc: int = 1, password: str | None = None) -> str:
        """The Authorization (or Proxy-) header answering the challenge for ``algorithm``."""
        return digest.authorization(challenge_reply, self.user, password or self.password,
                                    method, uri, algorithm, nc)

    def register(self, algorithm: str = "MD5", **kwargs: Any) -> str:
        challenge = self.request(**kwargs)
        assert challenge.startswith("SIP/2.0 401"), challenge
        auth = self.authorization(challenge, "REGISTER", f"sip:{DOMAIN}", algorithm)
        return self.request(authorization=auth, **kwargs)
