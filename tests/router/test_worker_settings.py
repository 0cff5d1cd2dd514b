"""``[core] workers``: the setting, what the supervisor refuses before it starts any worker,
and the secrets all workers share."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kamrouter.config import build_section
from kamrouter.core.main import resolve_auto_workers
from kamrouter.core.settings import MAX_WORKERS, CoreConfig, Settings
from kamrouter.core.supervisor import share_secrets, worker_rpc_config
from kamrouter.rpc.config import RpcConfig
from support.ports import free_port
from support.proxy import kamrouter_binary


def core(raw: dict) -> tuple[CoreConfig, list[str]]:
    problems: list[str] = []
    return build_section(CoreConfig, raw, "core", problems), problems


def test_workers_default_to_one_per_cpu_and_1_means_one_process() -> None:
    assert CoreConfig().is_auto()
    assert CoreConfig().worker_count() == min(os.cpu_count() or 1, MAX_WORKERS)
    assert core({"workers": 1})[0].worker_count() == 1
    for auto in (0, "auto"):
        config, problems = core({"workers": auto})
        assert not problems and config.worker_count() == min(os.cpu_count() or 1, MAX_WORKERS)
    assert core({"workers": 3})[0].worker_count() == 3


def test_bad_worker_counts_name_the_key() -> None:
    assert core({"workers": -1})[1] == [
        'core.workers: must be between 1 and 256 (0 or "auto": one per CPU), got -1']
    assert core({"workers": "many"})[1] == [
        "core.workers: expected integer or one of 'auto', got string 'many'"]


def test_evapi_passes_the_check_with_workers(tmp_path: Path) -> None:
    """Worker 0 holds evapi's port and clients, the others relay through it."""
    config = tmp_path / "kamrouter.toml"
    config.write_text(f'[core]\nlisten = ["udp:127.0.0.1:{free_port()}"]\nworkers = 2\n'
                      f'[rpc]\nrun_dir = "{tmp_path / "run"}"\n[evapi]\n')
    checked = subprocess.run([kamrouter_binary(), "--check", "-c", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_every_location_table_runs_with_workers(tmp_path: Path) -> None:
    """In memory and SQLite the state bus shares the table (worker 0 writes the file),
    Redis shares it too."""
    config = tmp_path / "kamrouter.toml"
    base = (f'[core]\nlisten = ["udp:127.0.0.1:{free_port()}"]\nworkers = 2\n'
            f'[rpc]\nrun_dir = "{tmp_path / "run"}"\n[registrar]\n')
    for usrloc in ("", '[usrloc]\ndb_mode = "sqlite"\n',
                   '[usrloc]\ndb_mode = "redis"\nredis_url = "redis://127.0.0.1:1"\n'):
        config.write_text(base + usrloc)
        checked = subprocess.run([kamrouter_binary(), "--check", "-c", str(config)],
                                 capture_output=True, text=True, timeout=60)
        assert "core.workers" not in checked.stderr, checked.stderr


def test_auto_runs_one_worker_per_cpu_with_evapi(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)  # "auto" starts four
    settings = Settings()
    settings.core.workers = 3
    assert resolve_auto_workers(settings) == 3  # explicit: kept
    settings.core.workers = "auto"
    settings.modules["evapi"] = {}
    assert resolve_auto_workers(settings) == 4
    assert "one process instead" not in caplog.text


def test_auto_runs_one_process_for_a_registrar_with_connection_clients(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)  # "auto" would start four
    settings = Settings()
    settings.modules["registrar"] = {}
    settings.core.listen = ["udp:127.0.0.1:5060"]
    assert resolve_auto_workers(settings) == settings.core.worker_count()  # UDP only
    settings.core.listen = ["udp:127.0.0.1:5060", "wss:127.0.0.1:8443"]
    assert resolve_auto_workers(settings) == 1
    assert "the registrar's clients on wss hold a connection to one worker" in caplog.text
    settings.core.workers = 2  # the operator's choice: started, with a warning
    assert resolve_auto_workers(settings) == 2


def test_workers_share_the_secrets_the_config_leaves_empty() -> None:
    first, second, own = Settings(), Settings(), Settings()
    first.modules["auth"] = {"realm": "example.com"}
    second.modules["auth"] = {"realm": "example.com"}
    own.modules["permissions"] = {"record_route_secret": "configured"}
    for settings in (first, second, own):
        share_secrets(settings, "from-the-supervisor")
    assert first.modules == second.modules
    assert first.modules["permissions"]["record_route_secret"] != \
        first.modules["auth"]["secret"]
    assert own.modules["permissions"]["record_route_secret"] == "configured"
    assert "auth" not in own.modules  # not loaded by a secret
    alone = Settings()
    share_secrets(alone, "")  # not started by a supervisor: nothing is filled in
    assert alone.modules == {}


def test_a_worker_serves_only_its_own_stream_socket() -> None:
    rpc = worker_rpc_config(RpcConfig(run_dir="/run/k", dgram_socket="k.dgram", fifo="k.fifo",
                                      http="127.0.0.1:5071"), 1)
    assert (rpc.run_dir, rpc.stream_socket) == ("/run/k", "worker-1.sock")
    assert (rpc.dgram_socket, rpc.fifo, rpc.http) == ("", "", "")
