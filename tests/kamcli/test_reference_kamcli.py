"""The reference Debian kamcli (/usr/bin/kamcli, 2.0) against kamrouter's jsonrpcs-style
datagram socket: its tcp and srv commands get Kamailio's result shapes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import ALIASES

if TYPE_CHECKING:
    from conftest import Router

REFERENCE = "/usr/bin/kamcli"
pytestmark = pytest.mark.skipif(not os.path.exists(REFERENCE),
                                reason="the reference kamcli is not installed (Debian kamcli)")


def reference(router: Router, tmp_path: Path, *args: str) -> Any:
    """Run the reference kamcli with a config pointing at the router; its JSON result."""
    config = tmp_path / "kamcli.ini"
    config.write_text("[main]\ndomain=kamcli.invalid\n[jsonrpc]\ntransport=socket\n"
                      f"srvaddr={router.dgram_socket}\nrcvaddr={tmp_path}/reply.sock\n"
                      "outformat=json\n")
    done = subprocess.run([REFERENCE, "--no-default-configs", "-c", str(config), *args],
                          capture_output=True, text=True, env=router.env, cwd=router.home,
                          timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    # The reference prints the whole JSON-RPC response document.
    start = done.stdout.index("{")
    return json.loads(done.stdout[start:])["result"]


def test_tcp_info_and_list(router: Router, tmp_path: Path) -> None:
    with socket.create_connection(("127.0.0.1", router.sip_port), timeout=10) as peer:
        peer.sendall(b"\r\n\r\n")  # a keepalive: the connection is in use, nothing to route
        assert peer.recv(10) == b"\r\n"  # its pong: the router has the connection now
        info = reference(router, tmp_path, "tcp", "info")
        assert info["opened_connections"] >= 1 and info["max_connections"] == 2048
        assert set(info) == {"readers", "max_connections", "max_tls_connections",
                             "opened_connections", "opened_tls_connections",
                             "write_queued_bytes"}
        connections = reference(router, tmp_path, "tcp", "list")
        mine = [c for c in connections if c["src_port"] == peer.getsockname()[1]]
        assert len(mine) == 1
        assert set(mine[0]) == {"id", "type", "state", "timeout", "lifetime", "ref_count",
                                "src_ip", "src_port", "dst_ip", "dst_port"}
        assert mine[0]["type"] == "TCP" and mine[0]["state"] == "CONN_OK"
        assert (mine[0]["dst_ip"], mine[0]["dst_port"]) == ("127.0.0.1", router.sip_port)


def test_srv_modules_and_aliases(router: Router, tmp_path: Path) -> None:
    modules = reference(router, tmp_path, "srv", "modules")
    assert {"tm", "sl", "rr"} <= set(modules)
    aliases = reference(router, tmp_path, "srv", "aliases")
    assert aliases == [{"PROTO": "*", "ADDR": ALIASES[0], "PORT": 0},
                       {"PROTO": "*", "ADDR": ALIASES[1].split(":")[0], "PORT": 5070}]


def test_this_kamcli_shows_the_same(router: Router) -> None:
    assert router.kamcli_json("srv", "aliases")[1]["PORT"] == 5070
    assert "tm" in router.kamcli_json("srv", "modules")
    assert "opened_connections" in router.kamcli_json("tcp", "info")
    assert isinstance(router.kamcli_json("tcp", "list"), list)
    for args in (["tcp", "info"], ["tcp", "list"], ["tcp", "options"], ["srv", "modules"],
                 ["srv", "aliases"]):
        done = router.kamcli("-o", "table", *args)
        assert done.returncode == 0 and done.stdout.strip(), done.stderr
