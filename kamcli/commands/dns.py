"""``dns`` and ``blocklist``: the router's DNS cache and its destination blocklist."""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context

RECORD_TYPES = ("NAPTR", "SRV", "A", "AAAA", "SIP")


@click.group("dns")
def cli() -> None:
    """The DNS cache of next-hop names (RFC 3263: NAPTR, SRV, A/AAAA)."""


@cli.command("view")
@pass_context
def view(ctx: Context) -> None:
    """List the cached records (dns.view)."""
    ctx.output(ctx.rpc("dns.view"), columns=["name", "type", "ttl", "records"]
               if ctx.output_format == "table" else None)


@cli.command("lookup")
@click.argument("rdtype", type=click.Choice(RECORD_TYPES, case_sensitive=False))
@click.argument("name")
@pass_context
def lookup(ctx: Context, rdtype: str, name: str) -> None:
    """Look NAME up through the router's cache; type SIP shows the RFC 3263 targets in the
    order a call would try them (dns.lookup)."""
    ctx.output(ctx.rpc("dns.lookup", rdtype, name))


@cli.command("flush")
@pass_context
def flush(ctx: Context) -> None:
    """Empty the DNS cache (dns.delete_all)."""
    ctx.output(ctx.rpc("dns.delete_all"))


@click.group("blocklist")
def blocklist() -> None:
    """Destinations skipped after a timeout or send error (Kamailio dst_blocklist)."""


@blocklist.command("list")
@pass_context
def blocklist_list(ctx: Context) -> None:
    """List the blocked destinations with seconds left and why (dst_blocklist.view)."""
    ctx.output(ctx.rpc("dst_blocklist.view"),
               columns=["proto", "ip", "port", "expires", "reason"]
               if ctx.output_format == "table" else None)


@blocklist.command("add")
@click.argument("destination", metavar="PROTO:IP:PORT")
@click.option("--expire", type=click.IntRange(1, 86400), help="Seconds (default: the router's "
              "dst_blocklist.expire).")
@pass_context
def blocklist_add(ctx: Context, destination: str, expire: int | None) -> None:
    """Block a destination by hand (dst_blocklist.add)."""
    ctx.output(ctx.rpc("dst_blocklist.add", destination, expire or 0))


@blocklist.command("rm")
@click.argument("destination", metavar="PROTO:IP:PORT")
@pass_context
def blocklist_rm(ctx: Context, destination: str) -> None:
    """Unblock one destination (dst_blocklist.delete)."""
    ctx.output(ctx.rpc("dst_blocklist.delete", destination))


@blocklist.command("flush")
@pass_context
def blocklist_flush(ctx: Context) -> None:
    """Unblock every destination (dst_blocklist.delete_all)."""
    ctx.output(ctx.rpc("dst_blocklist.delete_all"))
