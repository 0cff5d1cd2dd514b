"""The registrar script API: ``from kamrouter.script import registrar``.

``save``/``lookup``/``registered``/``unregister``/``reg_fetch_contacts`` are Kamailio's
registrar functions; ``load_contacts``/``next_contacts`` are tm's ``t_load_contacts`` /
``t_next_contacts`` (serial forking by q, parallel within equal q) on the destination set
lookup() built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.registrar.save import Details, SaveResult, save
from kamrouter.modules.usrloc.location import Q_UNSPECIFIED, Binding
from kamrouter.net import Endpoint
from kamrouter.pipeline.addressing import next_hop
from kamrouter.pipeline.flow import flow_uri, reached_over_connection, sender_needs_flow
from kamrouter.script.message import ScriptMessage, Target
from kamrouter.script.results import ReturnCode
from kamrouter.sip import SipParseError, SipUri, Uri, parse_uri

if TYPE_CHECKING:
    from kamrouter.modules.registrar.module import RegistrarModule

#: msg.vars key: the received address (sip:ip:port;transport=x) save() stores for a NATed
#: UA (set by nathelper.fix_nated_register, Kamailio's received_avp).
RECEIVED_VAR = "ul_received"
#: msg.vars keys: q of the R-URI chosen by lookup(), and the groups load_contacts() left.
RURI_Q_VAR = "ul_ruri_q"
CONTACTS_VAR = "ul_contacts"
#: save() flag 0x02 (Kamailio): do not send the reply.
NO_REPLY = 0x02


class LookupResult(ReturnCode):
    FOUND = 1
    NOT_FOUND = -1
    METHOD_NOT_ALLOWED = -2
    ERROR = -3


class RegistrarApi:
    def __init__(self, module: RegistrarModule) -> None:
        self._module = module

    @property
    def _cfg(self) -> RegistrarConfig:
        return self._module.config

    def _aor(self, uri_text: str | Uri) -> str | None:
        """The AoR key of a URI (as text, or already parsed); None when it is no SIP URI."""
        try:
            uri = parse_uri(uri_text) if isinstance(uri_text, str) else uri_text
        except SipParseError:
            return None
        if not isinstance(uri, SipUri):
            return None
        return self._module.usrloc.aor_of(uri.user, uri.host)

    # -- REGISTER ------------------------------------------------------------------------------
    def save(self, msg: ScriptMessage, table: str = "location", flags: int = 0,
             uri: str | None = None) -> SaveResult:
        """Apply a REGISTER to ``table`` and reply (unless flags has 0x02). The AoR is the To
        URI (or ``uri``). Returns 1 inserted, 2 updated, 3 deleted, 4 queried, -1 error,
        -2 too many contacts (falsy when negative)."""
        module = self._module
        try:
            aor = self._aor(uri or msg.sip.to.uri)  # the To view, parsed once
        except SipParseError:
            aor = None
        if aor is None or not aor:
            reply_status, reason, headers, code = 400, "Bad To URI", [], SaveResult.ERROR
        else:
            details = Details(aor, msg.vars.get(RECEIVED_VAR) or _flow_received(msg),
                              str(msg.local) if msg.local is not None else "",
                              module.usrloc.config.matching_mode)
            reply = save(msg.sip, module.usrloc.table(table), details,  # type: ignore[arg-type]
                         self._cfg)
            reply_status, reason, headers, code = (reply.status, reply.reason, reply.headers,
                                                   reply.code)
        (module.accepted if reply_status == 200 else module.rejected).inc()
        if not flags & NO_REPLY:
            module.router.send_reply(msg, reply_status, reason, tuple(headers))
        return code

    # -- calls to registered users ---------------------------------------------------------------
    def lookup(self, msg: ScriptMessage, table: str = "location",
               uri: str | None = None) -> LookupResult:
        """Point the R-URI at the AoR's best contact ($du: its received address, the
        connection of a WebSocket client; Route: its Path, socket: where it registered) and
        append the others as branches."""
        aor = self._aor(uri or msg.ruri)
        if aor is None:
            return LookupResult.ERROR
        bindings = [b for b in self._module.usrloc.table(table).bindings(aor)
                    if self._reachable(b)]
        if not bindings:
            return LookupResult.NOT_FOUND
        first, *others = bindings
        msg.ruri = first.contact
        usrloc = self._module.usrloc
        msg.dst_uri, msg.path, msg.socket = _hop(first, usrloc.own_socket(first.socket))
        msg.vars[RURI_Q_VAR] = first.q
        if self._cfg.append_branches:
            for binding in others:
                dst_uri, path, socket = _hop(binding, usrloc.own_socket(binding.socket))
                target = Target(binding.contact, dst_uri, socket, path)
                target.q = binding.q
                msg.branches.append(target)
        return LookupResult.FOUND

    def _reachable(self, binding: Binding) -> bool:
        """False for the binding of a client reachable only over its connection (WebSocket,
        a TCP/TLS ``.invalid`` or ``ob`` Contact) whose connection is gone: nothing can
        reach it until it registers again over a new one (Kamailio's handle_lost_tcp)."""
        received = binding.received
        if ";transport=" not in received:  # a UDP address (or none): cheap, and common
            return True
        try:
            hop = next_hop(received)
        except SipParseError:
            return True
        flow = Endpoint(hop.proto, hop.host, hop.port)
        if hop.proto == "udp" or not reached_over_connection(flow, binding.contact):
            return True
        return self._module.router.connected(flow)

    def registered(self, msg: ScriptMessage, table: str = "location",
                   uri: str | None = None) -> bool:
        """Whether the AoR of ``uri`` (default: the R-URI) has a live binding."""
        aor = self._aor(uri or msg.ruri)
        return bool(aor) and bool(self._module.usrloc.table(table).bindings(aor or ""))

    def unregister(self, msg: ScriptMessage | None, table: str, uri: str,
                   ruid: str | None = None) -> int:
        """Remove the AoR of ``uri`` (or only its binding ``ruid``); returns how many."""
        aor = self._aor(uri)
        if not aor:
            return -1
        location = self._module.usrloc.table(table)
        if ruid is None:
            return location.delete_aor(aor) or -1
        binding = next((b for b in location.records.get(aor, ()) if b.ruid == ruid), None)
        return 1 if binding is not None and location.delete(aor, binding) else -1

    def reg_fetch_contacts(self, table: str, uri: str) -> list[dict[str, Any]]:
        """The AoR's bindings as dicts (Kamailio's $ulc attributes), best first."""
        aor = self._aor(uri)
        if not aor:
            return []
        location = self._module.usrloc.table(table)
        now = location.clock()
        return [{"aor": aor, "addr": b.contact, "path": b.path, "received": b.received,
                 "expires": b.seconds_left(now), "callid": b.call_id, "cseq": b.cseq,
                 "q": b.q, "flags": b.flags, "cflags": b.cflags, "user_agent": b.user_agent,
                 "socket": b.socket, "ruid": b.ruid, "instance": b.instance,
                 "reg_id": b.reg_id, "modified": b.last_modified}
                for b in location.bindings(aor)]

    # -- serial forking (tm's t_load_contacts / t_next_contacts) -----------------------------------
    def load_contacts(self, msg: ScriptMessage) -> bool:
        """Order the destination set (R-URI + branches) by q into groups tried one after the
        other by next_contacts(); all of equal q: one group (parallel). False when empty."""
        entries = [(msg.vars.get(RURI_Q_VAR, Q_UNSPECIFIED),
                    (msg.ruri, msg.dst_uri, msg.path, msg.socket))]
        entries += [(Q_UNSPECIFIED if t.q is None else t.q, (t.uri, t.dst_uri, t.path, t.socket))
                    for t in msg.branches]
        groups: list[list[tuple[str, str | None, str | None, str | None]]] = []
        last_q: int | None = None
        for q, hop in sorted(entries, key=lambda entry: -entry[0]):  # stable within a q
            if q != last_q:
                groups.append([])
                last_q = q
            groups[-1].append(hop)
        msg.branches = []
        msg.vars[CONTACTS_VAR] = groups
        return True

    def next_contacts(self, msg: ScriptMessage) -> bool:
        """Make the next group of load_contacts() the destination set; False when none is
        left (then the failure route lets the last reply through)."""
        groups = msg.vars.get(CONTACTS_VAR)
        if not groups:
            return False
        (uri, dst_uri, path, socket), *rest = groups.pop(0)
        msg.ruri = uri
        msg.dst_uri, msg.path, msg.socket = dst_uri, path, socket
        msg.branches = [Target(uri, dst_uri=dst_uri, socket=socket, path=path)
                        for uri, dst_uri, path, socket in rest]
        return True


def _flow_received(msg: ScriptMessage) -> str:
    """The received address of a client reachable only over its own connection (WebSocket,
    whose Contact host is ``.invalid``; TCP/TLS with such a Contact or ``ob``): lookup() then
    sends over that connection, as long as it lives (RFC 7118 §5, RFC 5626). Empty for
    any other client."""
    source = msg.source
    return flow_uri(source) if source is not None and sender_needs_flow(
        source, msg.sip) else ""  # type: ignore[arg-type]


def _hop(binding: Binding, socket: str | None) -> tuple[str | None, str | None, str | None]:
    """$du, route set and socket of a binding: behind a Path the received address is the
    edge proxy's, so the Path alone says where to go."""
    if binding.path:
        return None, binding.path, socket
    return binding.received or None, None, socket
