"""Stages of a request on its way in, before the script sees it (sans-IO, plain functions):
where it really came from (RFC 3581), which address its connection stands for (RFC 5923) and
whether it came back to us in a circle (§16.3)."""
from __future__ import annotations

import hashlib
import re

from kamrouter.dns.rfc3263 import DEFAULT_PORTS
from kamrouter.net import Endpoint
from kamrouter.sip import Request, wire_bytes

#: A bare ``;rport`` Via parameter (the sender asks for its source port, RFC 3581).
_EMPTY_RPORT = re.compile(r";\s*rport(?=\s*(?:;|$))", re.IGNORECASE)


def stamp_received(req: Request, source: Endpoint) -> None:
    """RFC 3261 §18.2.1 / RFC 3581: record where the request really came from in its top Via
    (``received`` when sent-by is not the source address, ``rport=<port>`` when the sender
    asked), so replies find their way back through NATs."""
    via = req.via
    needs_received = via.host.strip("[]") != source.host
    if not needs_received and not via.has_rport:
        return
    value = req.pop_via()
    if via.has_rport:
        value = _EMPTY_RPORT.sub(f";rport={source.port}", value, count=1)
    if needs_received and via.received is None:
        value += f";received={source.host}"
    req.prepend_via(value)


def via_alias(req: Request, source: Endpoint) -> Endpoint | None:
    """RFC 5923: the address a request's top Via ``alias`` asks us to reach over the
    connection ``source`` (its sent-by), or None (no alias, not a connection, the same)."""
    via = req.via
    if not source.reliable or "alias" not in via.params:
        return None
    sent_by = Endpoint(source.proto, via.host.strip("[]"),
                       via.port or DEFAULT_PORTS.get(source.proto, 5060))
    return sent_by if sent_by != source else None


def loop_tag(req: Request, received_ruri: str) -> str:
    """Hash of what stays the same when a request comes back to us unchanged; a spiral (the
    request returns with another Request-URI) hashes differently (RFC 3261 §16.6 step 8)."""
    seed = "|".join((received_ruri, req.from_tag or "", req.to_tag or "", req.call_id,
                     str(req.cseq.number), req.get("Proxy-Require") or "",
                     req.get("Proxy-Authorization") or ""))
    return hashlib.blake2s(wire_bytes(seed), digest_size=6).hexdigest()


def is_looped(req: Request, branch_prefix: str) -> bool:
    """One of our Vias (branch ids starting with ``branch_prefix``) carries this very
    request's loop tag: it went round in a circle (§16.3 step 4)."""
    ours = branch_prefix + loop_tag(req, req.ruri)
    return any((via.branch or "").startswith(ours) for via in req.vias)
