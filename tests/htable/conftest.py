"""htable test helpers: the module on the shared stand-in router (``support.doubles``) and a
real router process (the real redis-server: ``support.redis``)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


from kamrouter.config import build_section
from kamrouter.core.settings import Settings
from kamrouter.modules.htable import HtableModule
from kamrouter.modules.htable.config import TableConfig
from support.doubles import FakeClock, RpcClient, StandInRouter
from support.ports import free_port
from support.proxy import TEST_WORKERS, ProxyProcess, kamrouter_binary
from support.wait import wait_until


def tables(*raw: dict[str, Any]) -> list[TableConfig]:
    """Validated table configs, as the router builds them from [[htable]] sections."""
    problems: list[str] = []
    configs = [build_section(TableConfig, item, f"htable[{i}]", problems)
               for i, item in enumerate(raw)]
    assert not problems, problems
    return configs


class Htable:
    """The module on a stand-in router, with its RPC methods called through JSON-RPC."""

    def __init__(self, tmp_path: Path, *raw: dict[str, Any],
                 clock: Callable[[], float] | None = None) -> None:
        self.router = StandInRouter(Settings(base_dir=tmp_path), clock=clock or FakeClock())
        self.module = HtableModule(self.router, tables(*raw))
        self.api = self.module.api()
        self.rpc = RpcClient(self.router.rpc)

    @property
    def error_data(self) -> Any:
        """``data`` of the last error reply (the details of -32602 Invalid params)."""
        return self.rpc.error_data


class RouterUnderTest:
    """A real ``kamrouter -c CONFIG`` process with [[htable]] tables and a routing script,
    and kamcli (in-process, over the router's control socket) to operate it."""

    def __init__(self, workdir: Path, *, tables: str, script: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.run_dir = workdir / "run"
        (workdir / "routes.py").write_text(script)
        config = workdir / "kamrouter.toml"
        config.write_text(f"""\
[core]
listen = ["udp:127.0.0.1:{self.port}", "tcp:127.0.0.1:{self.port}"]
workers = {TEST_WORKERS}

[routing]
script = "routes.py"

[rpc]
run_dir = "{self.run_dir}"

{tables}""")
        self.process = ProxyProcess("kamrouter", [kamrouter_binary(), "-c", str(config)],
                                    self.port, workdir)

    @property
    def address(self) -> str:
        return self.process.address

    @property
    def socket(self) -> str:
        return str(self.run_dir / "kamrouter_rpc.sock")

    def start(self, timeout: float = 30) -> RouterUnderTest:
        """Start and wait until the router says it is ready (modules started: tables
        loaded, Redis synced)."""
        self.process.start(timeout)
        wait_until(lambda: "kamrouter ready" in self.process.log_tail()
                   or not self.process.running(), "kamrouter ready", timeout=timeout,
                   detail=self.process.log_tail)
        assert self.process.running(), f"kamrouter exited:\n{self.process.log_tail()}"
        return self

    def stop(self) -> None:
        self.process.stop()

    def kamcli(self, *args: str, output: str = "json",
               env: dict[str, str] | None = None) -> Any:
        """Run ``kamcli -s SOCKET -o OUTPUT ARGS`` in-process; return the click Result."""
        from click.testing import CliRunner

        from kamcli.main import cli

        return CliRunner().invoke(cli, ["-s", self.socket, "-o", output, *args],
                                  prog_name="kamcli", env=env)

    def kamcli_ok(self, *args: str, output: str = "json") -> Any:
        """Like :meth:`kamcli`, requiring exit 0; returns parsed JSON stdout (or the text)."""
        result = self.kamcli(*args, output=output)
        assert result.exit_code == 0, (f"kamcli {' '.join(args)} -> {result.exit_code}\n"
                                       f"{result.output}\n{self.process.log_tail()}")
        text = result.stdout
        if output == "json" and text.strip():
            return json.loads(text)
        return text
