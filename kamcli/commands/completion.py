"""``completion``: the shell-completion script for bash, zsh or fish."""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

COMPLETE_VAR = "_KAMCLI_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Completes commands, options and the router's RPC method names. Install with:
      bash:  kamcli completion bash > ~/.local/share/bash-completion/completions/kamcli
      zsh:   kamcli completion zsh > "${fpath[1]}/_kamcli"
      fish:  kamcli completion fish > ~/.config/fish/completions/kamcli.fish
    """
    root = click.get_current_context().find_root().command
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # click.Choice allows only the shells click knows
    complete = completion_class(root, {}, "kamcli", COMPLETE_VAR)
    click.echo(complete.source())
