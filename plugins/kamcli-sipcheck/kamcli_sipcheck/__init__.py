"""``kamcli sipcheck``: send SIP OPTIONS through the router and report the latency.

A plugin like any third party's: installed as its own package, found through the
``kamcli.commands`` entry point, using only kamcli's plugin API and the standard library.
"""
from __future__ import annotations

import time
from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.errors import Unreachable
from kamcli_sipcheck.udp import probe_once

USER_AGENT = "kamcli-sipcheck/0.1"


def router_udp_socket(ctx: Context) -> tuple[str, int]:
    """The router's first UDP listening socket, from ``corex.list_sockets``."""
    for entry in ctx.rpc("corex.list_sockets"):
        if str(entry.get("PROTO", "")).lower() == "udp":
            host = str(entry.get("NAME", ""))
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
            return host, int(entry["PORT"])
    raise click.UsageError("the router has no UDP socket; give --proxy HOST:PORT")


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise click.BadParameter(f"{text!r}: expected HOST:PORT", param_hint="--proxy")
    return host.strip("[]"), int(port)


@click.command("sipcheck")
@click.argument("target", required=False, metavar="[URI]")
@click.option("-p", "--proxy", metavar="HOST:PORT",
              help="Where to send [default: the router's UDP socket, via RPC].")
@click.option("-c", "--count", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("-i", "--interval", type=click.FloatRange(min=0), default=1.0,
              show_default=True, metavar="SECONDS", help="Pause between probes.")
@click.option("-w", "--wait", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="How long to wait for each final response.")
@pass_context
def cli(ctx: Context, target: str | None, proxy: str | None, count: int, interval: float,
        wait: float) -> None:
    """Send SIP OPTIONS to URI through the router and report status and latency.

    Without URI the OPTIONS is addressed to the router itself.
    """
    address = parse_hostport(proxy) if proxy else router_udp_socket(ctx)
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    ruri = target or f"sip:{host}:{address[1]}"
    probes: list[dict[str, Any]] = []
    for seq in range(1, count + 1):
        if seq > 1:
            time.sleep(interval)
        result = probe_once(ruri, address, wait, USER_AGENT)
        probes.append({"seq": seq, "status": result.status, "reason": result.reason,
                       "latency_ms": result.latency_ms, "sent": result.transmissions,
                       "server": result.server})
    answered = [p["latency_ms"] for p in probes if p["status"] is not None]
    summary = {"sent": count, "answered": len(answered), "lost": count - len(answered)}
    if answered:
        summary |= {"min_ms": min(answered), "avg_ms": round(sum(answered) / len(answered), 3),
                    "max_ms": max(answered)}
    where = f"{ruri} via udp:{host}:{address[1]}"
    if ctx.output_format == "table":
        ctx.output(probes, title=f"OPTIONS {where}")
        ctx.info(", ".join(f"{key} {value}" for key, value in summary.items()))
    else:
        ctx.output({"target": ruri, "proxy": f"{address[0]}:{address[1]}", "probes": probes,
                    "summary": summary})
    if not answered:
        raise Unreachable(f"no answer to OPTIONS {where} within {wait:g}s per probe")
    if summary["lost"]:
        ctx.warn(f"{summary['lost']} of {count} probes got no answer")
