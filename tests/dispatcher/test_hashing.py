"""Kamailio's dispatcher hash, checked against values Kamailio 5.6.3 returned."""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kamrouter.modules.dispatcher.hashing import ds_hash, hash_slot, uri_hash_keys
from support.ports import free_port

#: (nslots, val1[, val2]) -> hashid, slot, from ``dispatcher.hash`` on Kamailio 5.6.3
#: (the first two are the spec's reference values; the rest include non-ASCII bytes).
KAMAILIO_VALUES = [
    ((4, "bob", "server.com"), 3883463682, 2),
    ((0, "alice"), 1834153949, 0),
    ((9, "tYgj "), 2061860219, 8),
    ((8, "x", "Bel31iEl"), 2172807717, 5),
    ((8, "h\x7fpCh\x80", "YgCfürL1s"), 2469048992, 0),
    ((3, "\x80"), 3760405368, 0),
    ((3, "m€i\x7fh", "A. 2O76UM"), 4058349323, 2),
    ((7, "\x805KXSc7Tvo", "hBKqFYY"), 2467809708, 0),
    ((6, "v", "Z€Jr3€J"), 1990084437, 3),
    ((9, "üYYZYn9ZhyiA4", "oR"), 2100807456, 6),
    ((9, "x"), 119, 2),
    ((9, "C é:QCyEZDz-", "TddJ8Hy"), 901333364, 5),
    ((6, "RA9"), 5773023, 3),
    ((0, "HZt ;\x80.PlJhx2"), 3647937255, 0),
    ((6, "x", "Iq"), 16608, 0),
    ((7, "héllo wörld €", "ü"), 3501944738, 5),
]


@pytest.mark.parametrize(("params", "hashid", "slot"), KAMAILIO_VALUES)
def test_hash_matches_kamailio(params: tuple, hashid: int, slot: int) -> None:
    nslots, *keys = params
    assert ds_hash(*keys) == hashid
    assert hash_slot(ds_hash(*keys), nslots) == slot


def test_hash_edge_cases() -> None:
    assert ds_hash(None) == 0
    assert ds_hash("") == 1          # an all-zero hash is reported as 1
    assert ds_hash(b"bob", b"server.com") == ds_hash("bob", "server.com")
    assert ds_hash("bob", "") == ds_hash("bob")   # an empty second key adds nothing


def test_uri_hash_keys() -> None:
    assert uri_hash_keys("sip", "bob", "example.com", None, False) == ("bob", "example.com")
    assert uri_hash_keys("sip", "bob", "example.com", 5060, False) == ("bob", "example.com")
    assert uri_hash_keys("sip", "bob", "example.com", 5070, False) == ("bob", "example.com:5070")
    assert uri_hash_keys("sips", "bob", "example.com", 5061, False) == ("bob", "example.com")
    assert uri_hash_keys("sips", "bob", "example.com", 5060, False) == ("bob", "example.com:5060")
    assert uri_hash_keys("sip", "bob", "example.com", 5070, True) == ("bob", None)
    assert uri_hash_keys("sip", None, "example.com", None, False) == ("", "example.com")


KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None)
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


@pytest.mark.skipif(KAMAILIO is None or not (MODULES / "dispatcher.so").exists(),
                    reason="kamailio with the dispatcher module is not installed")
def test_hash_matches_live_kamailio(tmp_path: Path) -> None:
    """Random keys (ASCII and not) hashed by a running Kamailio and by us."""
    rpc_path = tmp_path / "rpc.sock"
    (tmp_path / "ds.list").write_text("1 sip:127.0.0.1:5070\n")
    (tmp_path / "k.cfg").write_text(f"""#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:{free_port()}
mpath="{MODULES}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "jsonrpcs.so"
loadmodule "dispatcher.so"
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{rpc_path}")
modparam("dispatcher", "list_file", "{tmp_path / 'ds.list'}")
request_route {{ drop; }}
""")
    proc = subprocess.Popen([KAMAILIO, "-f", str(tmp_path / "k.cfg"), "-D", "-Y", str(tmp_path),
                             "-P", str(tmp_path / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        client.bind(str(tmp_path / "client.sock"))
        client.settimeout(5)
        deadline = time.monotonic() + 10
        while not rpc_path.exists():
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "kamailio did not open its RPC socket"
            time.sleep(0.05)
        rng = random.Random(11)
        alphabet = "abcXYZ019@.:;-_ é€ü\x7f\x80"
        for i in range(30):
            keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 13)))]
            if i % 2:
                keys.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))))
            request = {"jsonrpc": "2.0", "method": "dispatcher.hash", "params": [7, *keys], "id": i}
            client.sendto(json.dumps(request).encode(), str(rpc_path))
            result = json.loads(client.recv(65536))["result"]
            assert result == {"hashid": ds_hash(*keys), "slot": ds_hash(*keys) % 7}, keys
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
