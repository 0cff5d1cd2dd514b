"""Kamailio 5.6 with its dispatcher module as a reference peer for parity tests.

It loads a list file, answers ``dispatcher.*`` RPCs on a jsonrpcs datagram socket and, for
any SIP request carrying ``X-Alg: N``, runs ``ds_select_dst(1, N)`` then ``ds_next_dst()``
until the failover list is exhausted, and replies 200 with ``X-Du: uri1,uri2,...``: the
destinations Kamailio would try, in its order.
"""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from support.ports import free_port
from support.wait import TIMEOUT, wait_until

KAMAILIO = Path("/usr/sbin/kamailio")
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
REQUIRED = ("tm", "sl", "pv", "textops", "jsonrpcs", "dispatcher")


def available() -> bool:
    return KAMAILIO.exists() and all((MODULES / f"{m}.so").exists() for m in REQUIRED)


CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="{modules}/"
{loads}
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{rpc}")
modparam("dispatcher", "list_file", "{list}")
modparam("dispatcher", "flags", 2)
request_route {{
  $var(alg) = $hdr(X-Alg);
  if (!ds_select_dst("1", "$var(alg)")) {{ sl_send_reply("503", "none"); exit; }}
  $var(list) = $du;
  while (ds_next_dst()) {{ $var(list) = $var(list) + "," + $du; }}
  append_to_reply("X-Du: $var(list)\\r\\n");
  sl_send_reply("200", "ok");
}}
"""


class KamailioReference:
    def __init__(self, workdir: Path, list_text: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.rpc_path = workdir / "kamailio_rpc.sock"
        (workdir / "ds.list").write_text(list_text)
        (workdir / "kamailio.cfg").write_text(CFG.format(
            port=self.port, modules=MODULES, rpc=self.rpc_path, list=workdir / "ds.list",
            loads="\n".join(f'loadmodule "{m}.so"' for m in REQUIRED)))
        self._process = subprocess.Popen(
            [str(KAMAILIO), "-f", str(workdir / "kamailio.cfg"), "-D", "-E", "-Y", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._rpc = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._rpc.bind(str(workdir / "client.sock"))
        self._rpc.settimeout(TIMEOUT)
        self._sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sip.bind(("127.0.0.1", 0))
        self._sip.settimeout(TIMEOUT)
        process = self._process
        wait_until(lambda: self.rpc_path.exists() or process.poll() is not None,
                   "kamailio's RPC socket")
        if process.poll() is not None:
            raise AssertionError("kamailio exited:\n" + process.stderr.read().decode())

    def rpc(self, method: str, *params: Any) -> Any:
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        self._rpc.sendto(json.dumps(request).encode(), str(self.rpc_path))
        reply = json.loads(self._rpc.recv(65536))
        return reply.get("result", reply.get("error"))

    def destinations(self, alg: int, call_id: str, from_user: str = "alice",
                     ruri: str = "sip:bob@example.net") -> list[str]:
        """Kamailio's failover list for one request (first = the selected destination)."""
        port = self._sip.getsockname()[1]
        request = (f"OPTIONS {ruri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{abs(hash(call_id))}\r\n"
                   f"From: <sip:{from_user}@example.com>;tag=1\r\nTo: <{ruri}>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nX-Alg: {alg}\r\n"
                   "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self._sip.sendto(request.encode(), ("127.0.0.1", self.port))
        reply = self._sip.recv(65536).decode()
        for line in reply.split("\r\n"):
            if line.lower().startswith("x-du:"):
                return line.split(":", 1)[1].strip().split(",")
        return []

    def close(self) -> None:
        self._rpc.close()
        self._sip.close()
        self._process.terminate()
        self._process.wait(timeout=10)
