"""``subscriber``: the users allowed to authenticate (RPC ``subscriber.*`` of the auth
module's SQLite table).

kamcli turns the password into the HA1 values (MD5 of user:domain:password, MD5 of
user@domain:domain:password, SHA-256 of user:domain:password, the domain being the realm)
and sends only those: the clear password never reaches the router or its disk.

With ``[auth] credentials = "api"`` the HA1 values come from the routing API instead;
``subscriber cache`` shows what the router cached of its answers (RPC ``auth.cache_list``)
and ``subscriber cache-flush [USER@DOMAIN]`` forgets them (``auth.cache_flush``).
"""
from __future__ import annotations

import hashlib

import click

from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup


@click.group("subscriber", cls=AliasGroup, aliases={"show": "list", "del": "rm"})
def cli() -> None:
    """Subscribers: add, passwd, rm, list (HA1 values only are stored); cache,
    cache-flush (the routing API's answers)."""


def _split(userid: str) -> tuple[str, str]:
    user, at, domain = userid.partition("@")
    if not (user and at and domain):
        raise click.BadParameter(f"{userid!r}: expected USER@DOMAIN", param_hint="USERID")
    return user, domain


def ha1_values(user: str, domain: str, password: str) -> tuple[str, str, str]:
    def h(name: str, text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    return (h("md5", f"{user}:{domain}:{password}"),
            h("md5", f"{user}@{domain}:{domain}:{password}"),
            h("sha256", f"{user}:{domain}:{password}"))


@cli.command("add")
@click.argument("userid")
@click.argument("password")
@pass_context
def add(ctx: Context, userid: str, password: str) -> None:
    """Add USER@DOMAIN with PASSWORD (or replace its password)."""
    user, domain = _split(userid)
    ctx.info(ctx.rpc("subscriber.add", user, domain, *ha1_values(user, domain, password)))


@cli.command("passwd")
@click.argument("userid")
@click.argument("password")
@pass_context
def passwd(ctx: Context, userid: str, password: str) -> None:
    """Change the password of USER@DOMAIN."""
    user, domain = _split(userid)
    ctx.info(ctx.rpc("subscriber.passwd", user, domain, *ha1_values(user, domain, password)))


@cli.command("rm")
@click.argument("userid")
@pass_context
def rm(ctx: Context, userid: str) -> None:
    """Remove USER@DOMAIN."""
    ctx.info(ctx.rpc("subscriber.rm", *_split(userid)))


@cli.command("list")
@click.argument("domain", required=False)
@pass_context
def list_(ctx: Context, domain: str | None) -> None:
    """List subscribers (of DOMAIN)."""
    rows = ctx.rpc("subscriber.list", *([domain] if domain else []))
    ctx.output(rows, columns=["username", "domain", "algorithms"], title="subscribers")


@cli.command("cache")
@pass_context
def cache(ctx: Context) -> None:
    """The routing API's answers cached by [auth] credentials = "api" (no HA1 shown)."""
    rows = ctx.rpc("auth.cache_list")
    ctx.output(rows, columns=["username", "realm", "found", "algorithms", "expires_in"],
               title="cached credentials")


@cli.command("cache-flush")
@click.argument("userid", required=False)
@pass_context
def cache_flush(ctx: Context, userid: str | None) -> None:
    """Forget the cached answers (of USER@DOMAIN, the domain being the realm)."""
    ctx.info(ctx.rpc("auth.cache_flush", *(_split(userid) if userid else ())))
