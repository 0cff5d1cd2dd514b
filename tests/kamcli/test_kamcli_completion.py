"""Shell completion for bash (run in a real bash), zsh and fish scripts."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Router


def bash_complete(router: Router, words: str) -> list[str]:
    """COMPREPLY of kamcli's own bash completion function for the words typed so far."""
    script = router.kamcli("completion", "bash")
    assert script.returncode == 0, script.stderr
    program = (f"{script.stdout}\nCOMP_WORDS=({words}); COMP_CWORD={len(words.split()) - 1}\n"
               '_kamcli_completion kamcli\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    path = f"{Path(sys.executable).parent}:{router.env['PATH']}"  # bash runs `kamcli`
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True,
                          env={**router.env, "PATH": path}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_options_and_method_names(router: Router) -> None:
    assert "srv" in bash_complete(router, "kamcli sr")
    assert bash_complete(router, "kamcli srv so") == ["sockets"]
    assert "--watch" in bash_complete(router, "kamcli stats --wa")
    assert bash_complete(router, "kamcli rpc core.upt") == ["core.uptime"]
    assert "system.methodHelp" in bash_complete(router, "kamcli rpchelp system.")
    assert bash_complete(router, "kamcli stats tm") == ["tmx:"]


def test_bash_completes_htable_names_and_dispatcher_sets(modules_router: Router) -> None:
    assert bash_complete(modules_router, "kamcli htable dump us") == ["users"]
    assert bash_complete(modules_router, "kamcli htable get ''") == ["users"]
    assert bash_complete(modules_router, "kamcli dispatcher list --set ''") == ["1", "7"]
    assert bash_complete(modules_router, "kamcli dispatcher rm 7") == ["7"]


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef kamcli"),
                                           ("fish", "complete --no-files --command kamcli")])
def test_zsh_and_fish_scripts(router: Router, shell: str, marker: str) -> None:
    done = router.kamcli("completion", shell)
    assert done.returncode == 0 and marker in done.stdout and "_KAMCLI_COMPLETE" in done.stdout
