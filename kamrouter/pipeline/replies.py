"""Replies without a transaction (sans-IO): the ones this proxy makes up statelessly, and
where a reply that matches no transaction goes next (RFC 3261 §16.11, §18.2.2)."""
from __future__ import annotations

import hashlib

from kamrouter.pipeline.addressing import Identity, NextHop
from kamrouter.sip import Request, Response, make_response, wire_bytes


def stateless_reply(req: Request, status: int, reason: str | None,
                    headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> Response:
    """A reply to ``req`` whose To tag (added only when To has none) is the same for every
    retransmission. Raw header values: this also answers requests that failed to parse."""
    seed = "|".join(req.get(name) or "" for name in ("Call-ID", "From", "CSeq"))
    tag = hashlib.blake2s(wire_bytes(seed), digest_size=8).hexdigest()
    return make_response(req, status, reason, to_tag=tag, headers=headers, body=body)


def upstream_hop(reply: Response, identity: Identity) -> NextHop | None:
    """Where a reply with no transaction goes once our top Via is popped: the next Via's
    received/rport or sent-by (a host name is resolved like a next hop); None when the top
    Via is not ours or none is left."""
    vias = reply.vias
    top = vias[0]
    if len(vias) < 2 or not identity.is_me(top.host, top.port):
        return None
    nxt = vias[1]
    host = (nxt.received or nxt.host).strip("[]")
    return NextHop(nxt.transport.lower(), host, nxt.rport or nxt.port or 5060)
