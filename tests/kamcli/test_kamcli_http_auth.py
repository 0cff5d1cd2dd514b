"""kamcli against a kamrouter whose HTTP RPC wants credentials (``rpc.http_auth_file``)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy

KAMCLI = str(Path(sys.executable).parent / "kamcli")


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    auth = tmp_path / "rpc.auth"
    auth.write_text("s3cr3t-token\nops:pass word\n")
    os.chmod(auth, 0o600)
    proxy = kamrouter_proxy(tmp_path, free_port(), sections={"rpc": {
        "http": f"{LOOPBACK}:{free_port()}", "http_auth_file": str(auth)}})
    proxy.start()
    yield proxy
    proxy.stop()


def kamcli(proxy: ProxyProcess, *args: str, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    address = (proxy.workdir / "kamrouter.toml").read_text().split('http = "', 1)[1].split('"')[0]
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(proxy.workdir),
                   "LANG": "C.UTF-8", **(env or {})}
    return subprocess.run([KAMCLI, "-o", "json", "-u", f"http://{address}/RPC", *args],
                          capture_output=True, text=True, env=environment, timeout=60,
                          cwd=proxy.workdir)


def test_without_credentials_kamcli_says_what_to_set(router):
    done = kamcli(router, "uptime")
    assert done.returncode == 3, done
    assert "HTTP 401" in done.stderr and "KAMCLI_TOKEN_FILE" in done.stderr


@pytest.mark.parametrize("secret", ["s3cr3t-token", "ops:pass word"], ids=["bearer", "basic"])
def test_token_file_from_the_environment_or_the_config(router, tmp_path, secret):
    token = tmp_path / "token"
    token.write_text(f"# for kamcli\n{secret}\n")
    done = kamcli(router, "uptime", env={"KAMCLI_TOKEN_FILE": str(token)})
    assert done.returncode == 0, done.stderr
    (router.workdir / "kamcli.toml").write_text(f'token_file = "{token}"\n')
    done = kamcli(router, "uptime")
    assert done.returncode == 0, done.stderr
