"""What routing scripts call: ``from kamrouter.script import dialplan``.

    if dialplan.dp_translate(msg, 1):                  # R-URI user in and out ($rU/$rU)
        log.info("normalised to %s (%s)", msg.ruri_user, msg.vars["dp_attrs"])
    dialplan.dp_translate(msg, 2, "$fU", "$var(caller)")  # From user -> msg.vars["caller"]
    if dialplan.dp_match(msg, 3, msg.ruri_user):        # attrs only -> msg.vars["dp_attrs"]
        ...
    result = dialplan.translate(1, "0301234")           # no message: Translation or None

``src``/``dst`` name Kamailio variables: ``$rU`` (``$ruri.user``), ``$ru`` (``$ruri``),
``$du``, ``$fU``/``$tU`` (read only), ``$var(x)``/``$avp(x)``/``$xavp(x)`` (``msg.vars["x"]``).
The ``dp_*`` functions return True/False like Kamailio's 1 and -1/-2 (``has(dpid)`` tells
an unknown dialplan from no matching rule); an empty output leaves ``dst`` unchanged.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from kamrouter.modules.dialplan.rules import Dialplans, Translation, translate
from kamrouter.sip.uri import SipUri, TelUri, parse_uri
from kamrouter.stats import Counter

log = logging.getLogger("kamrouter.dialplan")

_VAR = re.compile(r"\$(?:var|avp|xavp)\((?:s:)?([^()]+)\)")
_READ_ONLY = {"$fU": "from_user", "$tU": "to_user"}
_RURI_USER = ("$rU", "$ruri.user")
_RURI = ("$ru", "$ruri")


class VariableError(ValueError):
    """A ``src``/``dst`` this API cannot read or write."""


def with_user(ruri: str, user: str) -> str:
    """``ruri`` with its user part (a tel: URI's number) replaced."""
    uri = parse_uri(ruri)
    if isinstance(uri, TelUri):
        rest = ruri[len(uri.scheme) + 1 + len(uri.number):]
        return _checked(f"{uri.scheme}:{user}{rest}")
    if not isinstance(uri, SipUri):
        raise VariableError(f"cannot set the user of {ruri!r}")
    body = ruri[len(uri.scheme) + 1:]
    if uri.user is not None:
        userinfo, _, body = body.partition("@")
        password = userinfo.partition(":")[2]
        user = f"{user}:{password}" if uri.password is not None else user
    return _checked(f"{uri.scheme}:{user}@{body}")


def _checked(uri: str) -> str:
    parse_uri(uri)  # a translated user with characters a URI cannot hold raises here
    return uri


def read_var(msg: Any, spec: str) -> str | None:
    if spec in _RURI_USER:
        return msg.ruri_user
    if spec in _RURI:
        return msg.ruri
    if spec == "$du":
        return msg.dst_uri
    if spec in _READ_ONLY:
        return getattr(msg, _READ_ONLY[spec])
    var = _VAR.fullmatch(spec)
    if var is not None:
        value = msg.vars.get(var.group(1))
        return None if value is None else str(value)
    raise VariableError(f"unsupported variable {spec!r} (use $rU, $ru, $du, $fU, $tU or "
                        "$var(name))")


def write_var(msg: Any, spec: str, value: str) -> None:
    if spec in _RURI_USER:
        msg.ruri = with_user(msg.ruri, value)
    elif spec in _RURI:
        msg.ruri = _checked(value)
    elif spec == "$du":
        msg.dst_uri = _checked(value)
    else:
        var = _VAR.fullmatch(spec)
        if var is None:
            raise VariableError(f"cannot write {spec!r} (use $rU, $ru, $du or $var(name))")
        msg.vars[var.group(1)] = value


class DialplanStats:
    __slots__ = ("translated", "not_matched", "errors")

    def __init__(self, counter: Callable[[str, str], Counter]) -> None:
        self.translated = counter("dialplan", "translated")
        self.not_matched = counter("dialplan", "not_matched")
        self.errors = counter("dialplan", "errors")


class DialplanApi:
    def __init__(self, current: Callable[[], Dialplans], max_length: int, attrs_var: str,
                 stats: DialplanStats) -> None:
        self._current = current
        self._max_length = max_length
        self._attrs_var = attrs_var
        self._stats = stats

    @property
    def max_length(self) -> int:
        return self._max_length

    def has(self, dpid: int) -> bool:
        """True when dialplan ``dpid`` has rules (Kamailio's -2 is its absence)."""
        return self._current().get(dpid) is not None

    def translate(self, dpid: int, value: str, msg: Any = None) -> Translation | None:
        """``value`` translated by dialplan ``dpid``: output and attrs, or None when the
        dialplan does not exist or no rule matches."""
        if isinstance(dpid, str) and dpid.strip().isdigit():
            dpid = int(dpid)  # Kamailio takes "1" as well as 1
        plan = self._current().get(dpid)
        result = None
        if plan is not None and value:
            result = translate(plan, value, self._max_length,
                               None if msg is None else (lambda: msg.ruri))
        stats = self._stats
        if result is None:
            stats.not_matched.value += 1
        else:
            stats.translated.value += 1
        return result

    def dp_translate(self, msg: Any, dpid: int, src: str = "$rU", dst: str | None = "$rU") -> bool:
        """Translate ``src`` into ``dst`` (None: match only) with dialplan ``dpid``."""
        try:
            value = read_var(msg, src)
            result = self.translate(dpid, value or "", msg)
            if result is None:
                return False
            if dst is not None and result.output:
                write_var(msg, dst, result.output)
        except ValueError as exc:  # VariableError, or a translated R-URI that does not parse
            self._stats.errors.value += 1
            log.warning("dp_translate(%s, %s/%s): %s", dpid, src, dst, exc)
            return False
        if self._attrs_var:
            msg.vars[self._attrs_var] = result.attrs
        return True

    def dp_replace(self, msg: Any, dpid: int, value: str, dst: str) -> bool:
        """Translate the string ``value`` into variable ``dst`` (Kamailio's dp_replace)."""
        try:
            result = self.translate(dpid, value, msg)
            if result is None:
                return False
            if result.output:
                write_var(msg, dst, result.output)
        except ValueError as exc:
            self._stats.errors.value += 1
            log.warning("dp_replace(%s, %r, %s): %s", dpid, value, dst, exc)
            return False
        if self._attrs_var:
            msg.vars[self._attrs_var] = result.attrs
        return True

    def dp_match(self, msg: Any, dpid: int, value: str) -> bool:
        """Match ``value`` only: the rule's attrs go to ``msg.vars[attrs_var]``."""
        result = self.translate(dpid, value, msg)
        if result is None:
            return False
        if self._attrs_var:
            msg.vars[self._attrs_var] = result.attrs
        return True
