"""Stages of a request on its way out (sans-IO, plain functions): Max-Forwards, loose and
strict routing, the next hop, and the Via and Record-Route this proxy stamps (RFC 3261 §16.4,
§16.6). They edit the request in place; the received bytes are spliced, not rebuilt."""
from __future__ import annotations

import hashlib

from kamrouter.net import Endpoint, format_hostport
from kamrouter.pipeline.addressing import Identity, NextHop, next_hop, record_route_value
from kamrouter.sip import MAGIC_COOKIE, Request, SipUri, wire_bytes


def decrement_max_forwards(req: Request, limit: int) -> bool:
    """Max-Forwards − 1 (``limit`` when missing, capped at it); False when it is exhausted.
    Kamailio's ``maxfwd_process``."""
    value = req.max_forwards
    if value is None:
        req.set_max_forwards(limit)
    elif value <= 0:
        return False
    else:
        req.set_max_forwards(min(value, limit) - 1)
    return True


def loose_route(req: Request, identity: Identity, ours: list[SipUri] | None = None) -> bool:
    """RFC 3261 §16.4: consume our own Route entries (appended to ``ours``, when given: their
    flow tokens may say where the request goes); True when the request had Route."""
    routes = req.routes
    strict = bool(routes) and identity.is_my_uri(req.ruri)
    if strict:
        # The previous hop was a strict router: the R-URI is our Record-Route entry and the
        # real R-URI is the last Route value.
        values = [str(r) for r in routes]
        req.remove_header("Route")
        for value in values[:-1]:
            req.append_header("Route", value)
        req.set_ruri(str(routes[-1].uri))
        routes = req.routes
    if not routes:
        return strict
    first = routes[0].uri
    if isinstance(first, SipUri) and identity.is_me(first.host_ip, first.port):
        req.pop_route()
        if ours is not None:
            ours.append(first)
        if first.params.get("r2") is not None and len(routes) > 1:
            second = routes[1].uri
            if isinstance(second, SipUri) and identity.is_me(second.host_ip, second.port):
                req.pop_route()
                if ours is not None:
                    ours.append(second)
    return True


def choose_next_hop(req: Request, dst_uri: str | None) -> NextHop:
    """$du, else the top Route (loose routing; a strict next hop gets the route as R-URI,
    RFC 3261 §16.6 step 6), else the R-URI. Raises SipParseError 416 for a non-SIP URI."""
    if dst_uri:
        return next_hop(dst_uri)
    routes = req.routes
    if routes:
        top = routes[0].uri
        if isinstance(top, SipUri) and not top.lr:
            req.pop_route()
            req.append_header("Route", f"<{req.ruri}>")
            req.set_ruri(str(top))
        return next_hop(str(top))
    return next_hop(req.ruri)


def add_record_route(req: Request, inbound: Endpoint, outbound: Endpoint,
                     params: str = "", inbound_flow: str | None = None,
                     outbound_flow: str | None = None) -> None:
    """One Record-Route, or two when the request changes transport or interface (or when
    both sides are client connections to name: each entry carries its side's flow token,
    RFC 5626 §5.3); the script's URI ``params`` (``;name=value``) in each."""
    if inbound == outbound and not (inbound_flow and outbound_flow):
        req.prepend_header("Record-Route", record_route_value(
            inbound, False, params, inbound_flow or outbound_flow))
        return
    req.prepend_header("Record-Route", record_route_value(inbound, True, params, inbound_flow))
    req.prepend_header("Record-Route", record_route_value(outbound, True, params,
                                                          outbound_flow))


def add_path(req: Request, local: Endpoint, flow: str | None, params: str = "") -> None:
    """Our Path entry (RFC 3327) naming ``local``; with the client's flow token and ``ob``
    when the client is reachable only over its connection (RFC 5626 §5.1); URI ``params``
    after them."""
    req.prepend_header("Path", record_route_value(
        local, False, (";ob" if flow else "") + params, flow))


def stamp(req: Request, local: Endpoint, branch_id: str,
          record_route_from: Endpoint | None, rr_params: str = "",
          flows: tuple[str | None, str | None] = (None, None), path: bool = False,
          mark: str = "") -> None:
    """Our Record-Route (when ``record_route_from`` is the inbound socket), Path (``path``)
    and Via, as the request leaves from listener ``local``; ``flows``: the flow tokens of the
    inbound and the outbound side (None where the peer is reachable by its address);
    ``mark``: URI parameters of ours in the Record-Route and Path entries (the worker
    process that holds a side's connection), before the script's ``rr_params``."""
    if record_route_from is not None:
        add_record_route(req, record_route_from, local, mark + rr_params, *flows)
    if path:
        add_path(req, local, flows[0], mark)
    req.prepend_via(f"SIP/2.0/{local.proto.upper()} "
                    f"{format_hostport(local.host, local.port)};branch={branch_id}")


def stateless_branch(req: Request) -> str:
    """RFC 3261 §16.11: the same request (retransmission) always gets the same branch."""
    via = req.via
    seed = via.branch if via.is_rfc3261 else (
        f"{req.call_id}|{req.from_tag}|{req.cseq.number}|{req.ruri}")
    method = "INVITE" if req.method in ("ACK", "CANCEL") and not via.branch else req.method
    digest = hashlib.blake2s(wire_bytes(f"{seed}|{method}"), digest_size=12).hexdigest()
    return f"{MAGIC_COOKIE}sl{digest}"
