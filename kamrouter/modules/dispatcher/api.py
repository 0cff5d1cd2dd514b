"""What routing scripts call: ``from kamrouter.script import dispatcher``.

    if not dispatcher.select_dst(msg, 1, 4):          # set 1, round robin -> msg.dst_uri
        sl.send_reply(msg, 503, "No destination")
    tm.on_failure(msg, "retry")
    tm.relay(msg)

    def retry(msg):                                    # failure route
        if tm.check_status(msg, "5[0-9][0-9]") or tm.branch_timeout(msg):
            dispatcher.mark_dst(msg, "ip")             # inactive at once, probed until back
            if dispatcher.next_dst(msg):
                tm.on_failure(msg, "retry")
                tm.relay(msg)

A selection is kept in ``msg.vars["_dispatcher"]`` (per transaction, so the failure route
sees it): the failover list in Kamailio's order and the position of the target in use.
The functions return True/False like Kamailio's 1/-1; ``is_from_list`` returns the
matching target (or None).
"""
from __future__ import annotations

from typing import Any

from kamrouter.modules.dispatcher.algorithms import (
    CALL_LOAD, KNOWN, PARALLEL, effective_alg, select_targets,
)
from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.flags import parse_state
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.model import Destination
from kamrouter.modules.dispatcher.uri import canonical_ip, parse_target, replace_hostport
from kamrouter.script.message import Target

VARS_KEY = "_dispatcher"
#: ``is_from_list`` mode bits (Kamailio's).
MATCH_IGNORE_PORT, MATCH_IGNORE_PROTO, MATCH_ACTIVE, MATCH_SOCKET, MATCH_CLOSEST = 1, 2, 4, 8, 16


class Selection:
    """One call's selection: the failover list and the target in use."""

    __slots__ = ("setid", "alg", "targets", "position", "apply", "load_owner")

    def __init__(self, setid: int, alg: int, targets: list[Destination], apply: str) -> None:
        self.setid = setid
        self.alg = alg
        self.targets = targets
        self.position = 0
        #: "dst" (msg.dst_uri), "domain" (R-URI host:port) or "none".
        self.apply = apply
        #: Algorithm 10: the token its call's load holds (:meth:`CallLoad.assign`).
        self.load_owner = 0

    @property
    def current(self) -> Destination | None:
        return self.targets[self.position] if self.position < len(self.targets) else None


class DispatcherApi:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._ds = dispatcher

    # -- selection --------------------------------------------------------------------------

    def select_dst(self, msg: Any, set: int, alg: int, limit: int | None = None) -> bool:
        """Choose a target of ``set`` with algorithm ``alg`` and make it the next hop
        (``msg.dst_uri``); the rest of the failover list waits for ``next_dst``."""
        if not self._ds.config.force_dst and msg.dst_uri:
            return False
        return self._select(msg, set, alg, limit, "dst")

    def select_domain(self, msg: Any, set: int, alg: int, limit: int | None = None) -> bool:
        """Like select_dst, but rewrite the R-URI's host:port with the target's."""
        return self._select(msg, set, alg, limit, "domain")

    def select(self, msg: Any, set: int, alg: int, limit: int | None = None) -> bool:
        """Only choose: the failover list is stored, nothing in the message changes."""
        return self._select(msg, set, alg, limit, "none")

    def _select(self, msg: Any, setid: int, alg: int, limit: int | None, apply: str) -> bool:
        dset = self._ds.list.sets.get(setid)
        if dset is None:
            return False
        alg = effective_alg(alg, msg.method) if alg in KNOWN else alg
        targets = select_targets(dset, alg, msg, self._ds.options, self._ds.rng, limit)
        if not targets:
            dset.counters.select_failures.value += 1
            return False
        dset.counters.selections.value += 1
        selection = Selection(setid, alg, targets, apply)
        msg.vars[VARS_KEY] = selection
        chosen = targets[0]
        if alg == CALL_LOAD:
            selection.load_owner = self._ds.calls.assign(msg.call_id, chosen, self._ds.clock())
        self._apply(msg, selection, chosen)
        chosen.health.selected += 1
        if alg == PARALLEL and apply != "none":
            self._fork(msg, targets[1:], apply)
            selection.position = len(targets)  # every target is in use: nothing to fail over to
        return True

    def _fork(self, msg: Any, targets: list[Destination], apply: str) -> None:
        """Algorithm 12: one more branch of the message's destination set per target, each
        with the target's own socket (not the one the first target put on the message)."""
        ruri = msg.ruri
        for dest in targets:
            dest.health.selected += 1
            socket = dest.attrs.socket or self._ds.config.default_socket or None
            if apply == "dst":
                msg.branches.append(Target(ruri, dest.uri, socket))
            else:
                msg.branches.append(Target(replace_hostport(ruri, dest.address), None, socket))

    def _apply(self, msg: Any, selection: Selection, dest: Destination) -> None:
        if selection.apply == "dst":
            msg.dst_uri = dest.uri
        elif selection.apply == "domain":
            msg.ruri = replace_hostport(msg.ruri, dest.address)
        else:
            return
        socket = dest.attrs.socket or self._ds.config.default_socket
        if socket:
            msg.socket = socket

    def next_dst(self, msg: Any) -> bool:
        """Move to the next usable target of the failover list and make it the next hop."""
        return self._next(msg, "dst")

    def next_domain(self, msg: Any) -> bool:
        """Move to the next usable target and put its host:port into the R-URI."""
        return self._next(msg, "domain")

    def _next(self, msg: Any, apply: str) -> bool:
        selection: Selection | None = msg.vars.get(VARS_KEY)
        if selection is None:
            return False
        position = selection.position + 1
        while position < len(selection.targets) and not selection.targets[position].health.usable:
            position += 1
        selection.position = position
        dest = selection.current
        if dest is None:
            if selection.alg == CALL_LOAD:
                self._ds.calls.release(msg.call_id)
            return False
        if selection.alg == CALL_LOAD:
            selection.load_owner = self._ds.calls.assign(msg.call_id, dest, self._ds.clock())
        selection.apply = apply
        self._apply(msg, selection, dest)
        dest.health.selected += 1
        self._ds.counters_for(selection.setid).failovers.value += 1
        return True

    def selected(self, msg: Any) -> Destination | None:
        """The target in use by this call (its uri, setid, priority, attrs...), if any."""
        selection: Selection | None = msg.vars.get(VARS_KEY)
        return selection.current if selection is not None else None

    # -- state ------------------------------------------------------------------------------

    def mark_dst(self, msg: Any, state: str = "i") -> bool:
        """Change the state of this call's current target, e.g. ``"ip"`` in a failure
        route: inactive at once and probed until it answers again. The dst-down event
        carries the reply that made the script decide (a failure route's ``msg.status``)."""
        dest = self.selected(msg)
        if dest is None:
            return False
        self._ds.change_state(dest, parse_state(state), Origin.SCRIPT, msg.status, msg.reason)
        return True

    def mark_addr(self, state: str, set: int, uri: str) -> bool:
        """Change the state of the targets of ``set`` with this URI."""
        bits = parse_state(state)
        targets = self._ds.list.find(set, uri)
        for dest in targets:
            self._ds.change_state(dest, bits, Origin.SCRIPT)
        return bool(targets)

    def is_active(self, set: int, uri: str | None = None) -> bool:
        """Whether ``set`` has a usable target (or the target with this URI is usable)."""
        dset = self._ds.list.sets.get(set)
        if dset is None:
            return False
        return any(d.health.usable for d in dset.targets if uri is None or d.uri == uri)

    def list_exists(self, set: int) -> bool:
        return set in self._ds.list.sets

    def is_from_list(self, msg: Any, set: int = -1, mode: int = MATCH_IGNORE_PROTO,
                     uri: str | None = None) -> Destination | None:
        """The target matching the message's source (or ``uri``), in ``set`` or any set
        (-1). Mode bits: 1 ignore port, 2 ignore protocol, 4 only usable targets, 8 also
        match the local socket, 16 closest match (ip required; port, protocol and socket
        add to a score, the best wins)."""
        if uri is not None:
            address = parse_target(uri)
            ip = address.ip or address.host_ip
            port, proto = address.effective_port, address.effective_proto
        else:
            source = msg.source
            ip = canonical_ip(source.host) or source.host
            port, proto = source.port, source.proto.lower()
        local_socket = msg.socket if mode & MATCH_SOCKET else None
        best: Destination | None = None
        best_score = -1
        sets = self._ds.list.sets
        if set == -1:
            candidates = list(sets.values())
        else:
            candidates = [sets[set]] if set in sets else []
        for dset in candidates:
            for dest in dset.targets:
                if mode & MATCH_ACTIVE and not dest.health.usable:
                    continue
                if ip not in self._ds.addresses_of(dest):
                    continue
                addr = dest.address
                port_ok = addr.effective_port == port
                proto_ok = addr.effective_proto == proto
                socket_ok = not local_socket or dest.attrs.socket == local_socket
                if mode & MATCH_CLOSEST:
                    score = 2 * port_ok + 4 * proto_ok + 8 * socket_ok
                    if score > best_score:
                        best, best_score = dest, score
                elif ((mode & MATCH_IGNORE_PORT or port_ok)
                      and (mode & MATCH_IGNORE_PROTO or proto_ok) and socket_ok):
                    return dest
        return best

    # -- call load (algorithm 10) -----------------------------------------------------------

    def load_update(self, msg: Any) -> bool:
        """Call-load bookkeeping: a BYE or CANCEL ends the call's load, a 2xx reply to the
        INVITE confirms it (it then expires after ``call_load_expire``)."""
        if msg.sip.is_request:
            if msg.method in ("BYE", "CANCEL"):
                return self._ds.calls.release(msg.call_id)
            return False
        if msg.method == "INVITE" and 200 <= msg.status < 300:
            return self._ds.calls.confirm(msg.call_id, self._ds.clock())
        return False

    def load_unset(self, msg: Any) -> bool:
        """Remove this call's load now (e.g. in the failure route when giving up); without
        it the load goes when the INVITE transaction ends without a 2xx."""
        return self._ds.calls.release(msg.call_id)
