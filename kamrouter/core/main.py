"""``kamrouter`` command line (filled in by the proxy-engine work)."""
from __future__ import annotations

import click

from kamrouter import __version__


@click.command()
@click.version_option(__version__, prog_name="kamrouter")
def main() -> None:
    """Run the kamrouter SIP router."""
