"""``address`` (also ``permissions``): the permissions module's address groups (RPC
``permissions.*``), with the reference kamcli's command names.

``list`` shows one row per entry (group, address, mask, port, proto, tag, kind) from
``addressDump``, ``subnetDump`` and ``domainDump``; unlike the reference kamcli it filters
by the GROUP arguments. ``add``/``rm`` change the running router (and its address_file,
so the change survives a restart) instead of a database table.
"""
from __future__ import annotations

from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup

COLUMNS = ["group", "address", "mask", "port", "proto", "tag", "kind"]
#: --mode → (RPC method, the item's address field, the row's kind).
DUMPS = {"addresses": ("permissions.addressDump", "ip", "address"),
         "subnets": ("permissions.subnetDump", "ip", "subnet"),
         "domains": ("permissions.domainDump", "domain_name", "domain")}


@click.group("address", cls=AliasGroup, aliases={"delete": "rm", "del": "rm", "show": "list"})
def cli() -> None:
    """Address groups of the permissions module: list, add, rm, test, reload."""


def entry_rows(ctx: Context, mode: str) -> list[dict[str, Any]]:
    rows = []
    for kind in DUMPS if mode == "all" else (mode,):
        method, address_key, row_kind = DUMPS[kind]
        for record in ctx.rpc(method) or []:
            item = record.get("item") or {}
            ip = item.get(address_key, "")
            rows.append({"group": record.get("group"), "address": ip,
                         "mask": item.get("mask", 128 if ":" in ip else 32)
                         if kind != "domains" else "",
                         "port": item.get("port"), "proto": item.get("proto", "any"),
                         "tag": "" if item.get("tag") in (None, "NULL") else item["tag"],
                         "kind": row_kind})
    return rows


@cli.command("list")
@click.argument("groups", nargs=-1, type=int)
@click.option("--mode", type=click.Choice(["all", *DUMPS]), default="all", show_default=True,
              help="Which entries: exact addresses, subnets, domain names, or all.")
@pass_context
def list_entries(ctx: Context, groups: tuple[int, ...], mode: str) -> None:
    """Show the address entries (of GROUPS only, when given)."""
    rows = [row for row in entry_rows(ctx, mode) if not groups or row["group"] in groups]
    rows.sort(key=lambda row: (row["group"], row["kind"], str(row["address"])))
    ctx.output(rows, columns=COLUMNS, title="permissions address groups")


@cli.command("reload")
@pass_context
def reload(ctx: Context) -> None:
    """Read the address entries again from the config and the address_file."""
    ctx.info(ctx.rpc("permissions.addressReload"))


@cli.command("add")
@click.argument("group", type=click.IntRange(min=1))
@click.argument("address")
@click.option("--mask", type=click.IntRange(0, 128), default=0,
              help="Prefix length (0: the whole address; or give ADDRESS as IP/prefix).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0: any port.")
@click.option("--tag", default="", help="One token, returned by the match.")
@click.option("--proto", default="any", show_default=True,
              type=click.Choice(["any", "udp", "tcp", "tls", "ws", "wss", "sctp"]))
@pass_context
def add(ctx: Context, group: int, address: str, mask: int, port: int, tag: str,
        proto: str) -> None:
    """Add ADDRESS (IP, IP/prefix or domain name) to GROUP."""
    ctx.info(ctx.rpc("permissions.addressAdd", group, address, mask, port, tag, proto))


@cli.command("rm")
@click.argument("group", type=click.IntRange(min=1))
@click.argument("address")
@click.option("--mask", type=click.IntRange(0, 128), default=0)
@click.option("--port", type=click.IntRange(0, 65535), default=0)
@pass_context
def rm(ctx: Context, group: int, address: str, mask: int, port: int) -> None:
    """Remove ADDRESS (with this mask and port) from GROUP."""
    ctx.info(ctx.rpc("permissions.addressRemove", group, address, mask, port))


@cli.command("test")
@click.argument("group", type=click.IntRange(min=0))
@click.argument("address")
@click.argument("port", type=click.IntRange(0, 65535), default=0)
@click.option("--proto", default="any", show_default=True,
              type=click.Choice(["any", "udp", "tcp", "tls", "ws", "wss", "sctp"]))
@pass_context
def test(ctx: Context, group: int, address: str, port: int, proto: str) -> None:
    """Does ADDRESS[:PORT] match GROUP (0: any group)? As allow_address() would answer."""
    result = ctx.rpc("permissions.testAddress", group, address, port, proto)
    ctx.output(result, columns=["allowed", "group", "ip", "port", "tag"],
               title="permissions test")
