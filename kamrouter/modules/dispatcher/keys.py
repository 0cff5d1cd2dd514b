"""What the hash algorithms hash, read from the script message ``msg``.

| alg | keys |
|-----|------|
| 0   | Call-ID |
| 1/2/3 | user and ``host[:port]`` of the From / To / Request-URI (``hash_user_only``: user) |
| 5   | username of the first Proxy-Authorization, else Authorization (None: no credentials) |
| 7   | the ``hash_key`` template, e.g. ``"{from_user}@{call_id}"`` |
"""
from __future__ import annotations

import re
from typing import Any

from kamrouter.modules.dispatcher.hashing import uri_hash_keys
from kamrouter.modules.dispatcher.uri import parse_sip_uri

Keys = tuple[str, str | None]

#: Message attributes a ``hash_key`` template may name, besides ``{header:Name}``.
TEMPLATE_FIELDS = frozenset({
    "call_id", "from_uri", "from_user", "from_tag", "to_uri", "to_user", "ruri", "ruri_user",
    "ruri_host", "src_ip", "src_port", "proto", "method",
})


_FIELD = re.compile(r"\{([^{}]*)\}")


def uri_keys(uri: str | None, user_only: bool) -> Keys:
    """Keys of algorithms 1-3; a URI that is not sip/sips is hashed whole."""
    if not uri:
        return "", None
    try:
        parsed = parse_sip_uri(uri)
    except ValueError:
        return uri, None
    return uri_hash_keys(parsed.scheme, parsed.user, parsed.host, parsed.port, user_only)


def auth_username(msg: Any) -> str | None:
    sip = msg.sip
    for credentials in (*sip.proxy_authorization, *sip.authorization):
        if credentials.username:
            return str(credentials.username)
    return None


class HashKeyTemplate:
    """A ``hash_key`` template compiled once: literal text and ``{field}`` references."""

    def __init__(self, template: str) -> None:
        parts: list[tuple[str, str | None]] = []
        position = 0
        for match in _FIELD.finditer(template):
            field = match.group(1).strip()
            if not (field in TEMPLATE_FIELDS or field.startswith("header:") and field[7:]):
                raise ValueError(f"unknown field {{{field}}}; use {{header:Name}} or one of "
                                 + ", ".join(sorted(TEMPLATE_FIELDS)))
            parts.append((template[position:match.start()], field))
            position = match.end()
        if not parts:
            raise ValueError("the template names no {field}, so every call would hash alike")
        parts.append((template[position:], None))
        self.template = template
        self._parts = parts

    def expand(self, msg: Any) -> str:
        out: list[str] = []
        for literal, field in self._parts:
            out.append(literal)
            if field is None:
                continue
            if field.startswith("header:"):
                value = msg.get_header(field[7:])
            else:
                value = getattr(msg, field)
            out.append("" if value is None else str(value))
        return "".join(out)
