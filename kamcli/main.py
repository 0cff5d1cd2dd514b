"""kamcli entry point (the control-plane work fills in the command tree)."""
from __future__ import annotations

import click

from kamcli import __version__


@click.group()
@click.version_option(__version__, prog_name="kamcli")
def cli() -> None:
    """Operate a running kamrouter over JSON-RPC."""


def main() -> None:
    cli()
