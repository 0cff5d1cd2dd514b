"""Built-in script APIs named after Kamailio's modules: sl, tm, rr, path, maxfwd, sanity,
core.

Every function takes the script message as its first argument. They are thin: the work is
done by the router's proxy pipeline (:mod:`kamrouter.pipeline.proxy`).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

from kamrouter.script.message import ScriptMessage, Target
from kamrouter.sip import sanity_check
from kamrouter.stats import Counter
from kamrouter.tm import Transaction, TransactionLayer


class _Identity(Protocol):
    def is_my_uri(self, uri_text: str) -> bool: ...


class Proxy(Protocol):
    """What these APIs use of the proxy pipeline (:class:`kamrouter.pipeline.proxy.Proxy`)."""

    @property
    def tm(self) -> TransactionLayer: ...

    @property
    def identity(self) -> _Identity: ...

    @property
    def err_requests(self) -> Counter: ...

    def relay(self, msg: ScriptMessage) -> bool: ...

    def transaction_for(self, msg: ScriptMessage) -> Transaction: ...

    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> bool: ...

    def forward_stateless(self, msg: ScriptMessage, uri: str | None = None) -> bool: ...

    def loose_route(self, msg: ScriptMessage) -> bool: ...

    def decrement_max_forwards(self, msg: ScriptMessage, limit: int) -> bool: ...


@lru_cache(maxsize=256)
def _status_pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


class Sl:
    """Stateless replies (Kamailio ``sl``); stateful when a transaction already exists."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def send_reply(self, msg: ScriptMessage, code: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = ()) -> bool:
        return self._proxy.send_reply(msg, code, reason, headers)

    def reply_error(self, msg: ScriptMessage) -> bool:
        """Reply 500 (Kamailio ``sl_reply_error`` after a failed relay)."""
        return self._proxy.send_reply(msg, 500, "Server Internal Error")


class Tm:
    """Transaction management (Kamailio ``tm``/``tmx``)."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def relay(self, msg: ScriptMessage) -> bool:
        """Forward statefully to $du/R-URI plus appended branches (parallel fork)."""
        return self._proxy.relay(msg)

    def newtran(self, msg: ScriptMessage) -> bool:
        """Create the transaction now (absorbs retransmissions; 100 Trying for INVITE)."""
        self._proxy.transaction_for(msg)
        return True

    def send_reply(self, msg: ScriptMessage, code: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = ()) -> bool:
        """Reply statefully (t_reply / t_send_reply)."""
        self._proxy.transaction_for(msg)
        return self._proxy.send_reply(msg, code, reason, headers)

    reply = send_reply

    def on_failure(self, msg: ScriptMessage, handler: Any) -> None:
        """Arm the failure route: a script function or its name (re-arm for every round)."""
        self._proxy.transaction_for(msg).failure_handler = handler

    def on_branch(self, msg: ScriptMessage, handler: Any) -> None:
        self._proxy.transaction_for(msg).branch_handler = handler

    def on_reply(self, msg: ScriptMessage, handler: Any) -> None:
        self._proxy.transaction_for(msg).reply_handler = handler

    def append_branch(self, msg: ScriptMessage, uri: str | None = None,
                      dst_uri: str | None = None, socket: str | None = None,
                      path: str | None = None) -> Target:
        """Add a parallel branch (default: the current R-URI/$du, like Kamailio); ``path``
        is a Route set (comma-separated) the branch is sent through."""
        target = Target(uri or msg.ruri, dst_uri if uri else (dst_uri or msg.dst_uri),
                        socket or msg.socket, path)
        msg.branches.append(target)
        return target

    def set_timers(self, msg: ScriptMessage, fr_inv_timer: int | None = None,
                   fr_timer: int | None = None) -> None:
        """t_set_fr, in ms: per branch in a branch route, else for the transaction."""
        fr_inv = fr_inv_timer / 1000 if fr_inv_timer else None
        fr = fr_timer / 1000 if fr_timer else None
        holder: Any = msg.target if msg.target is not None else \
            self._proxy.transaction_for(msg)
        if fr_inv is not None:
            holder.fr_inv_timer = fr_inv
        if fr is not None:
            holder.fr_timer = fr

    def check_status(self, msg: ScriptMessage, regex: str) -> bool:
        """Whether the relevant reply code (winning / received / last sent) matches."""
        code = msg.status or (msg.txn.last_status if msg.txn is not None else 0)
        return bool(code) and _status_pattern(regex).fullmatch(str(code)) is not None

    def branch_timeout(self, msg: ScriptMessage) -> bool:
        return msg.branch is not None and msg.branch.timed_out

    def branch_replied(self, msg: ScriptMessage) -> bool:
        return msg.branch is not None and msg.branch.replied and not msg.branch.faked

    def any_timeout(self, msg: ScriptMessage) -> bool:
        return msg.txn is not None and any(b.timed_out for b in msg.txn.branches)

    def is_canceled(self, msg: ScriptMessage) -> bool:
        return msg.txn is not None and msg.txn.canceled

    def check_trans(self, msg: ScriptMessage) -> bool:
        """True when the request belongs to an existing transaction."""
        tm = self._proxy.tm
        if msg.method == "CANCEL":
            return tm.find_invite(msg.sip) is not None  # type: ignore[arg-type]
        return tm.find(msg.sip) is not None  # type: ignore[arg-type]

    def lookup(self, tindex: int, tlabel: int) -> Any:
        return self._proxy.tm.lookup(tindex, tlabel)


class Rr:
    """Record-routing and loose routing (Kamailio ``rr``)."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def record_route(self, msg: ScriptMessage, params: str = "") -> bool:
        """Add Record-Route on relay (two entries when transport or interface changes);
        ``params`` (``";name=value"``) are added to our entries (Kamailio's
        ``record_route("params")``) and come back in the Route of in-dialog requests."""
        msg.record_route = params or True
        return True

    def loose_route(self, msg: ScriptMessage) -> bool:
        return self._proxy.loose_route(msg)


class Path:
    """Path for REGISTER forwarded to a registrar (Kamailio ``path``, RFC 3327): the
    registrar routes requests for the contact back through this proxy. Towards a client
    reachable only over its connection (WebSocket), the entry carries an RFC 5626 flow token
    and ``ob``, and a request that comes back through it goes over that connection (Kamailio
    ``path`` with ``outbound``)."""

    def add_path(self, msg: ScriptMessage) -> bool:
        """Add our Path entry (naming the socket the request leaves from) on relay."""
        if msg.method != "REGISTER":
            return False
        msg.add_path = True
        return True


class Maxfwd:
    """Max-Forwards (Kamailio ``maxfwd``)."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def process(self, msg: ScriptMessage, limit: int = 70) -> bool:
        """Decrement Max-Forwards (add ``limit`` when missing, cap it); False when exhausted."""
        return self._proxy.decrement_max_forwards(msg, limit)


class Sanity:
    """Request sanity checks (Kamailio ``sanity``): replies with the reason on failure."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def check(self, msg: ScriptMessage) -> bool:
        if not msg.sip.is_request:
            return True
        # Max-Forwards is maxfwd.process's job (it runs first in a script).
        problem = sanity_check(msg.sip, check_max_forwards=False)
        if problem is None:
            return True
        self._proxy.err_requests.value += 1
        self._proxy.send_reply(msg, problem.status, problem.reason, tuple(problem.headers))
        return False


class Core:
    """Core functions: stateless forwarding (Kamailio ``forward()``), drop."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def forward(self, msg: ScriptMessage, uri: str | None = None) -> bool:
        return self._proxy.forward_stateless(msg, uri)

    def is_myself(self, uri: str) -> bool:
        return self._proxy.identity.is_my_uri(uri)


def builtin_apis(proxy: Proxy) -> dict[str, object]:
    return {"sl": Sl(proxy), "tm": Tm(proxy), "rr": Rr(proxy), "path": Path(),
            "maxfwd": Maxfwd(proxy),
            "sanity": Sanity(proxy), "core": Core(proxy)}
