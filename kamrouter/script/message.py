"""The object routing-script hooks receive: a SIP message plus its routing context.

Attribute names follow Kamailio's pseudo-variables where one exists: ``ruri`` ($ru),
``dst_uri`` ($du), ``source`` ($si/$sp/$pr), ``vars`` ($xavp: per-transaction storage that
survives into failure, branch and reply routes), ``flags`` (transaction flags); both are
created on first use, and are the transaction's once it has one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.net import Endpoint
from kamrouter.sip import Request, Response, SipUri, parse_uri

if TYPE_CHECKING:
    from kamrouter.tm import Branch, Transaction


class RouteState:
    """What routing keeps per transaction, for the routes that run after request_route
    (failure, branch, reply) and for modules at the transaction's end: the script's vars and
    flags, and how the request was relayed. Kept in ``Transaction.context``; read it with
    :func:`route_state` / :func:`transaction_vars`. The vars dict and the flags set are
    created on first use: most calls never write either (an empty set costs 216 bytes)."""

    __slots__ = ("_vars", "_flags", "relay_request", "record_route", "add_path", "loop_tag")

    def __init__(self, vars: dict[str, Any] | None = None, flags: set[int] | None = None
                 ) -> None:
        self._vars = vars
        self._flags = flags
        #: The request as relayed (failure routes start from a copy of it).
        self.relay_request: Request | None = None
        #: rr.record_route: False, True, or the URI parameters of our Record-Route entries.
        self.record_route: bool | str = False
        #: path.add_path: a Path entry naming the outgoing socket (RFC 3327).
        self.add_path = False
        #: Loop-detection hash of the request as received (RFC 3261 §16.6 step 8).
        self.loop_tag: str | None = None

    @property
    def vars(self) -> dict[str, Any]:
        if self._vars is None:
            self._vars = {}
        return self._vars

    @property
    def flags(self) -> set[int]:
        if self._flags is None:
            self._flags = set()
        return self._flags


def route_state(txn: Transaction) -> RouteState:
    """The transaction's routing state, created empty on first need."""
    state = txn.context
    if state is None:
        state = txn.context = RouteState()
    return state  # type: ignore[no-any-return]


def transaction_vars(txn: Transaction) -> dict[str, Any]:
    """The script's vars of a transaction (empty when routing stored none)."""
    state = txn.context
    return state.vars if state is not None else {}  # type: ignore[no-any-return]


class Target:
    """One entry of the destination set: where a branch goes and how."""

    __slots__ = ("uri", "dst_uri", "socket", "path", "fr_timer", "fr_inv_timer", "headers",
                 "branch_flags", "q")

    def __init__(self, uri: str, dst_uri: str | None = None, socket: str | None = None,
                 path: str | None = None) -> None:
        self.uri = uri
        self.dst_uri = dst_uri
        self.socket = socket
        #: Route set to put in front of the branch (Kamailio's branch ``path``).
        self.path = path
        self.fr_timer: float | None = None
        self.fr_inv_timer: float | None = None
        self.headers: list[tuple[str, str]] = []
        #: Branch flags of the branch this entry becomes (``Branch.flags``, Kamailio's $bf).
        self.branch_flags = 0
        #: The contact's q (0..1000, registrar's serial forking); None when it has none.
        self.q: int | None = None


class ScriptMessage:
    """What ``request_route``, ``reply_route``, failure and branch routes receive."""

    __slots__ = (
        "sip", "source", "local", "txn", "dst_uri", "socket", "path", "_vars", "_flags", "branches",
        "record_route", "mf_done", "status", "reason", "reply", "branch", "target", "route",
        "replied", "received_ruri", "branch_index", "add_path",
    )

    def __init__(self, sip: Request | Response, source: Endpoint, local: Endpoint | None,
                 route: str = "request") -> None:
        self.sip = sip
        self.source = source
        self.local = local
        #: The transaction, once tm created it (tm.relay, a stateful reply, an async hook).
        self.txn: Transaction | None = None
        self.dst_uri: str | None = None
        self.socket: str | None = None
        #: Route set the R-URI branch is sent through (Kamailio's branch ``path``).
        self.path: str | None = None
        #: ``vars`` and ``flags``, created on first use: the transaction's once it has one.
        self._vars: dict[str, Any] | None = None
        self._flags: set[int] | None = None
        #: Extra parallel branches added with tm.append_branch (the R-URI is branch 0).
        self.branches: list[Target] = []
        #: rr.record_route: False, True, or the URI parameters of our Record-Route entries.
        self.record_route: bool | str = False
        #: path.add_path: put our Path entry on the REGISTER as it leaves (RFC 3327).
        self.add_path = False
        self.mf_done = False
        self.status = 0
        self.reason = ""
        #: In failure routes: the winning reply; in reply routes: the reply itself.
        self.reply: Response | None = None
        #: In branch and reply routes: the branch concerned ($T_branch_idx: its index).
        self.branch: Branch | None = None
        self.branch_index: int | None = None
        #: In branch routes: the destination-set entry being sent.
        self.target: Target | None = None
        #: "request", "reply", "failure", "branch" or "event".
        self.route = route
        #: True once a reply was sent (sl or tm) from request context.
        self.replied = False
        #: The Request-URI as it arrived, before the script rewrote it (loop detection).
        self.received_ruri = sip.ruri if sip.is_request else ""  # type: ignore[union-attr]

    # -- per-transaction storage ------------------------------------------------------
    @property
    def vars(self) -> dict[str, Any]:
        """The script's vars ($xavp): the transaction's (:class:`RouteState`) once it has
        one, so they survive into its failure, branch and reply routes."""
        if self._vars is None:
            self._vars = route_state(self.txn).vars if self.txn is not None else {}
        return self._vars

    @vars.setter
    def vars(self, value: dict[str, Any]) -> None:
        self._vars = value

    @property
    def flags(self) -> set[int]:
        """Transaction flags, shared with the transaction like :attr:`vars`."""
        if self._flags is None:
            self._flags = route_state(self.txn).flags if self.txn is not None else set()
        return self._flags

    @flags.setter
    def flags(self, value: set[int]) -> None:
        self._flags = value

    # -- request line ---------------------------------------------------------------
    @property
    def method(self) -> str:
        sip = self.sip
        return sip.method if sip.is_request else sip.cseq.method  # type: ignore[union-attr]

    @property
    def ruri(self) -> str:
        if self.target is not None:
            return self.target.uri
        return self.sip.ruri  # type: ignore[union-attr]

    @ruri.setter
    def ruri(self, uri: str) -> None:
        if self.target is not None:
            self.target.uri = uri
        else:
            self.sip.set_ruri(uri)  # type: ignore[union-attr]

    @property
    def ruri_user(self) -> str | None:
        uri = parse_uri(self.ruri)
        return uri.user if isinstance(uri, SipUri) else getattr(uri, "number", None)

    @property
    def ruri_host(self) -> str | None:
        uri = parse_uri(self.ruri)
        return uri.host if isinstance(uri, SipUri) else None

    # -- source -------------------------------------------------------------------------
    @property
    def src_ip(self) -> str:
        return self.source.host

    @property
    def src_port(self) -> int:
        return self.source.port

    @property
    def proto(self) -> str:
        return self.source.proto

    # -- dialog identifiers ---------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.sip.call_id

    @property
    def from_uri(self) -> str:
        return str(self.sip.from_.uri)

    @property
    def from_user(self) -> str | None:
        return getattr(self.sip.from_.uri, "user", None)

    @property
    def from_tag(self) -> str | None:
        return self.sip.from_tag

    @property
    def to_uri(self) -> str:
        return str(self.sip.to.uri)

    @property
    def to_user(self) -> str | None:
        return getattr(self.sip.to.uri, "user", None)

    @property
    def to_tag(self) -> str | None:
        return self.sip.to_tag

    # -- transaction identity (Kamailio $T(id_index) / $T(id_label)) ----------------------
    @property
    def tindex(self) -> int | None:
        return self.txn.tindex if self.txn is not None else None

    @property
    def tlabel(self) -> int | None:
        return self.txn.tlabel if self.txn is not None else None

    # -- headers --------------------------------------------------------------------------
    def get_header(self, name: str) -> str | None:
        return self.sip.get(name)

    def get_headers(self, name: str) -> list[str]:
        return self.sip.get_all(name)

    def append_header(self, name: str, value: str) -> None:
        self.sip.append_header(name, value)

    def remove_header(self, name: str) -> int:
        return self.sip.remove_header(name)

    def __repr__(self) -> str:
        sip = self.sip
        what = f"{sip.method} {self.ruri}" if isinstance(sip, Request) else str(sip.status)
        return f"<ScriptMessage {self.route} {what} from {self.source}>"
