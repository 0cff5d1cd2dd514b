"""``ul``: user location of a running router (RPC ``ul.*``, Kamailio's names and shapes).

``show`` lists one row per contact (aor, contact, expires in, q, received, path, socket,
user agent); ``-o json`` gives the same rows for scripts.
"""
from __future__ import annotations

from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup

CONTACT_COLUMNS = ["aor", "contact", "expires", "q", "received", "path", "socket",
                   "user_agent"]
NOT_SET = "[not set]"

table_option = click.option("--table", "-t", default="location", show_default=True,
                            help="Location table (Kamailio's usrloc domain).")


@click.group("ul", cls=AliasGroup, aliases={"dump": "show", "list": "show"})
def cli() -> None:
    """User location: show, add and remove registered contacts."""


def _rows(aor: str, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for item in contacts:
        c = item.get("Contact", item)

        def field(name: str, c: dict[str, Any] = c) -> Any:
            value = c.get(name)
            return None if value == NOT_SET else value

        rows.append({"aor": aor, "contact": c.get("Address"), "expires": c.get("Expires"),
                     "q": c.get("Q"), "received": field("Received"), "path": field("Path"),
                     "socket": field("Socket"), "user_agent": field("User-Agent"),
                     "call_id": c.get("Call-ID"), "cseq": c.get("CSeq"),
                     "instance": field("Instance"), "reg_id": c.get("Reg-Id"),
                     "ruid": c.get("Ruid")})
    return rows


@cli.command("show")
@click.argument("aor", required=False)
@table_option
@pass_context
def show(ctx: Context, aor: str | None, table: str) -> None:
    """Show the contacts of AOR, or of every AoR."""
    if aor:
        result = ctx.rpc("ul.lookup", table, aor)
        rows = _rows(result.get("AoR", aor), result.get("Contacts") or [])
    else:
        rows = []
        for domain in ctx.rpc("ul.dump").get("Domains") or []:
            info = domain.get("Domain", {})
            if info.get("Domain") != table:
                continue
            for record in info.get("AoRs") or []:
                record_info = record.get("Info", {})
                rows += _rows(record_info.get("AoR", ""), record_info.get("Contacts") or [])
    ctx.output(rows, columns=CONTACT_COLUMNS, title=f"{table}: {len(rows)} contacts")


@cli.command("add")
@click.argument("aor")
@click.argument("contact")
@table_option
@click.option("--expires", "-e", type=click.IntRange(min=1), default=3600, show_default=True,
              help="Seconds the contact stays registered.")
@click.option("--q", "-q", "q", type=float, default=-1.0, help="q value 0..1 (-1: unset).")
@click.option("--path", default=".", help="Path (route set) of the contact.")
@click.option("--flags", type=int, default=0)
@click.option("--cflags", type=int, default=0, help="Branch flags.")
@click.option("--methods", type=int, default=-1, help="Methods bitmask (-1: all).")
@click.option("--received", default=".", help="Received address (sip:ip:port).")
@click.option("--socket", default=".", help="Local socket (proto:ip:port).")
@pass_context
def add(ctx: Context, aor: str, contact: str, table: str, expires: int, q: float, path: str,
        flags: int, cflags: int, methods: int, received: str, socket: str) -> None:
    """Add (or replace) CONTACT of AOR."""
    ctx.rpc("ul.add", table, aor, contact, expires, q, path, flags, cflags, methods,
            received, socket)
    ctx.info(f"{aor}: {contact} added for {expires} s")


@cli.command("rm")
@click.argument("aor")
@click.argument("contact", required=False)
@table_option
@pass_context
def rm(ctx: Context, aor: str, contact: str | None, table: str) -> None:
    """Remove AOR with all its contacts, or only CONTACT."""
    if contact:
        ctx.rpc("ul.rm_contact", table, aor, contact)
        ctx.info(f"{aor}: {contact} removed")
    else:
        ctx.rpc("ul.rm", table, aor)
        ctx.info(f"{aor}: removed")
