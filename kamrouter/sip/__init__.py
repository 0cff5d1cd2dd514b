"""Sans-IO SIP message library (no sockets, no trio).

``parse(data)`` turns one datagram (or one message cut from a stream by ``StreamFramer``)
into a ``Request`` or ``Response``. It checks eagerly only what the transaction layer relies
on: the start line, the header index (case-insensitive names, compact forms, folded lines),
duplicate single-value headers, the mandatory headers, CSeq (against the method),
Content-Length (against the body) and the top Via. Every other typed view (``from_``,
``contacts``, ``routes``, ``uri``, ...) is parsed on first access and cached; a malformed one
raises ``SipParseError`` then. ``msg.validate()`` forces them all.

Edits (``prepend_via``, ``set_max_forwards``, ``prepend_header``, ``set_ruri``, ...) change a
list of raw header lines; ``to_bytes()`` returns the received bytes when nothing changed and
otherwise joins the lines once, so untouched lines stay byte-identical. ``copy()`` copies the
line list and shares everything immutable.

``SipParseError`` is the only exception for bad input; it carries the status to answer with
and a reason naming the problem. ``sanity_check`` covers what a proxy checks on a
well-formed request (416, 420, 483, ...).
"""
from .auth import Challenge, Credentials, parse_challenge, parse_credentials
from .build import make_ack, make_cancel, make_request, make_response
from .errors import SipLimitError, SipParseError
from .framing import StreamFramer
from .headers import COMPACT, split_commas
from .ids import generate_branch, generate_call_id, generate_tag
from .message import (DEFAULT_LIMITS, DEFAULT_MAX_SIZE, CSeq, HeaderLimits, Message, Request,
                      Response, parse, wire_bytes)
from .nameaddr import NameAddr, parse_name_addr
from .reasons import REASONS
from .sanity import is_broadcast_via, sanity_check
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri, sip_uri_problem
from .via import MAGIC_COOKIE, Via

__all__ = [
    "AbsoluteUri", "CSeq", "COMPACT", "Challenge", "Credentials", "DEFAULT_LIMITS",
    "DEFAULT_MAX_SIZE", "HeaderLimits", "SipLimitError",
    "MAGIC_COOKIE", "Message", "NameAddr", "REASONS", "Request", "Response", "SipParseError",
    "SipUri", "StreamFramer", "TelUri", "Uri", "Via", "generate_branch", "generate_call_id",
    "generate_tag", "is_broadcast_via", "make_ack", "make_cancel", "make_request",
    "make_response", "parse", "parse_challenge", "parse_credentials", "parse_name_addr",
    "parse_uri", "sanity_check", "sip_uri_problem", "split_commas", "wire_bytes",
]
