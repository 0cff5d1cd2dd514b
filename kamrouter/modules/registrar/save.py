"""A REGISTER applied to a location table (RFC 3261 §10.3, RFC 3327, RFC 5626), sans-IO.

:func:`save` checks the whole request first and changes nothing when any contact is refused
(400, 423, 503), then inserts, updates and removes bindings and returns the reply to send:
200 OK listing every current binding with its remaining time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.usrloc.location import Q_UNSPECIFIED, Binding, Location
from kamrouter.script.results import ReturnCode
from kamrouter.sip import NameAddr, Request, SipParseError

MAX_CONTACTS_PER_REQUEST = 32
MAX_TEXT = 512  # longest User-Agent / instance kept


class SaveResult(ReturnCode):
    """Kamailio's save() return codes."""

    INSERTED = 1
    UPDATED = 2
    DELETED = 3
    QUERIED = 4
    ERROR = -1
    TOO_MANY_CONTACTS = -2


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    code: SaveResult = SaveResult.ERROR


@dataclass
class Details:
    """What the caller knows about the request beyond its bytes."""

    aor: str
    received: str = ""  # sip:ip:port;transport=x when the UA is behind NAT
    socket: str = ""
    matching_mode: int = 0


def _refuse(status: int, reason: str, *headers: tuple[str, str],
            code: SaveResult = SaveResult.ERROR) -> Reply:
    return Reply(status, reason, list(headers), code)


def _unquote(value: str | None) -> str:
    if not value:
        return ""
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value


class _Change:
    __slots__ = ("contact", "expires", "q", "instance", "reg_id", "existing")

    def __init__(self, contact: str, expires: int, q: int, instance: str, reg_id: int,
                 existing: Binding | None) -> None:
        self.contact = contact
        self.expires = expires
        self.q = q
        self.instance = instance
        self.reg_id = reg_id
        self.existing = existing


def _expires_of(na: NameAddr, header: int | None, cfg: RegistrarConfig) -> int:
    value = na.expires
    if value is None:
        value = header if header is not None else cfg.default_expires
    if value and cfg.max_expires and value > cfg.max_expires:
        value = cfg.max_expires
    return value


def _find(bindings: list[Binding], contact: str, instance: str, reg_id: int, call_id: str,
          path: str, mode: int) -> Binding | None:
    for binding in bindings:
        if instance:  # RFC 5626 §6: the flow is instance + reg-id, whatever the URI
            if binding.instance == instance and binding.reg_id == reg_id:
                return binding
            continue
        if binding.instance or binding.contact != contact:
            continue
        if mode == 1 and binding.call_id != call_id:
            continue
        if mode == 2 and binding.path != path:
            continue
        return binding
    return None


def save(req: Request, table: Location, details: Details, cfg: RegistrarConfig) -> Reply:
    try:
        contacts = req.contacts
        header_expires = req.expires
    except SipParseError as exc:
        return _refuse(400, exc.reason)
    call_id, cseq = req.call_id, req.cseq.number
    aor = details.aor
    now = table.clock()
    path = ",".join(req.get_all("Path")) if cfg.use_path else ""
    supported = {s.strip().lower() for v in req.get_all("Supported") for s in v.split(",")} \
        if path else set()  # read only for a Path to keep
    if path and cfg.path_mode == "strict" and "path" not in supported:
        return _refuse(420, "Path support required", ("Unsupported", "path"))

    if contacts == "*":
        if header_expires != 0:
            return _refuse(400, "Invalid Contact * (needs Expires: 0)")
        current = table.records.get(aor, [])
        # An older request of the same registering UA does not remove anything (§10.3).
        if not any(b.call_id == call_id and cseq <= b.cseq for b in current):
            table.delete_aor(aor)
        return _ok(table, aor, now, path, supported, SaveResult.DELETED, cfg)
    if not contacts:
        return _ok(table, aor, now, path, supported, SaveResult.QUERIED, cfg)
    if len(contacts) > MAX_CONTACTS_PER_REQUEST:
        return _refuse(400, f"Too many contacts in one request (max "
                            f"{MAX_CONTACTS_PER_REQUEST})")

    bindings = table.bindings(aor)
    changes: list[_Change] = []
    try:
        for na in contacts:
            expires = _expires_of(na, header_expires, cfg)
            if 0 < expires < cfg.min_expires:
                if cfg.min_expires_mode == 1:
                    return _refuse(423, "Interval Too Brief",
                                   ("Min-Expires", str(cfg.min_expires)))
                expires = cfg.min_expires
            q = na.q
            instance = _unquote(na.params.get("+sip.instance"))[:MAX_TEXT]
            reg_id_text = na.params.get("reg-id") or "0"
            if not reg_id_text.isdigit() or len(reg_id_text) > 9:
                return _refuse(400, "Invalid reg-id parameter")
            contact = str(na.uri)
            reg_id = int(reg_id_text)
            existing = _find(bindings, contact, instance, reg_id, call_id, path,
                             details.matching_mode)
            changes.append(_Change(contact, expires,
                                   cfg.default_q if q is None else round(q * 1000),
                                   instance, reg_id, existing))
    except SipParseError as exc:
        return _refuse(400, exc.reason)

    if cfg.max_contacts:
        added = sum(1 for c in changes if c.existing is None and c.expires)
        removed = sum(1 for c in changes if c.existing is not None and not c.expires)
        if len(bindings) + added - removed > cfg.max_contacts:
            headers = [("Retry-After", str(cfg.retry_after))] if cfg.retry_after else []
            return _refuse(503, "Too many registered contacts", *headers,
                           code=SaveResult.TOO_MANY_CONTACTS)

    done: set[SaveResult] = set()
    user_agent = (req.get("User-Agent") or "")[:MAX_TEXT]
    for change in changes:
        old = change.existing
        if old is not None and old.call_id == call_id and cseq <= old.cseq:
            continue  # a retransmission or an older request: RFC 3261 §10.3 step 7
        if not change.expires:
            if old is not None:
                table.delete(aor, old)
                done.add(SaveResult.DELETED)
            continue
        binding = Binding(change.contact, now + change.expires, change.q, call_id, cseq, path,
                          details.received, details.socket, user_agent, change.instance,
                          change.reg_id, ruid=old.ruid if old is not None else "")
        table.put(aor, binding, replacing=old)
        done.add(SaveResult.INSERTED if old is None else SaveResult.UPDATED)
    code = next((c for c in (SaveResult.INSERTED, SaveResult.UPDATED, SaveResult.DELETED)
                 if c in done), SaveResult.QUERIED)
    return _ok(table, aor, now, path, supported, code, cfg)


def contact_value(binding: Binding, now: float) -> str:
    value = f"<{binding.contact}>;expires={binding.seconds_left(now)}"
    if binding.q != Q_UNSPECIFIED:
        value += f";q={binding.q / 1000:.3f}".rstrip("0").rstrip(".")
    if binding.instance:
        value += f';+sip.instance="{binding.instance}"'
    if binding.reg_id:
        value += f";reg-id={binding.reg_id}"
    return value


def _ok(table: Location, aor: str, now: float, path: str, supported: set[str],
        code: SaveResult, cfg: RegistrarConfig) -> Reply:
    bindings = table.bindings(aor)
    headers = [("Contact", contact_value(b, now)) for b in bindings]
    if path and cfg.path_mode != "off" and "path" in supported:
        headers.append(("Path", path))
    if any(b.reg_id for b in bindings):
        headers.append(("Require", "outbound"))
    return Reply(200, "OK", headers, code)
