"""WebRTC signalling for one domain: browsers (SIP over WebSocket) and UDP phones register
here and call each other. Signalling only: the SDP goes through untouched.

- REGISTER for our domain authenticates (digest, 401) unless KAMROUTER_AUTH=off; a browser's
  binding keeps its WebSocket connection (the registrar does that for ws/wss clients), so
  lookup() reaches its ``.invalid`` Contact over that connection.
- Calls from our users authenticate too (407) and may reach a registered user of the domain;
  strangers may call our users; nothing else is relayed (403).
- Record-Route on every dialog-creating request: doubled where a call crosses from WebSocket
  to UDP, the WebSocket entry with a flow token, so in-dialog requests (the desk phone's
  BYE) go back over the browser's connection.

Configuration: KAMROUTER_DOMAIN (default example.com, also a [core] alias), KAMROUTER_AUTH
(on/off), and the router's TOML: [websocket], [tls], [usrloc], [registrar], [auth].
"""
from __future__ import annotations

import os

from kamrouter.default.routes import handled_before_routing  # checks, in-dialog requests
from kamrouter.script import auth, core, registrar, rr, sl, tm

DOMAIN = os.environ.get("KAMROUTER_DOMAIN", "example.com")
AUTH = os.environ.get("KAMROUTER_AUTH", "on") != "off"
#: auth_check flag: the authenticated user must be the From user (and the To user of a
#: REGISTER).
SAME_USER = 1


def request_route(msg):
    if handled_before_routing(msg):
        return
    if msg.method == "REGISTER":
        register(msg)
        return
    if msg.method == "OPTIONS" and core.is_myself(msg.ruri) and msg.ruri_user is None:
        sl.send_reply(msg, 200, "OK")  # keep-alive / health check of the server itself
        return
    if core.is_myself(msg.from_uri) and not authenticated(msg):
        return
    if not core.is_myself(msg.ruri):
        sl.send_reply(msg, 403, "Relaying Forbidden")
        return
    if msg.method in ("INVITE", "SUBSCRIBE", "REFER"):
        rr.record_route(msg)
    if not registrar.lookup(msg, "location"):
        sl.send_reply(msg, 404, "Not Found")
        return
    tm.relay(msg)


def register(msg):
    if not core.is_myself(msg.to_uri):
        sl.send_reply(msg, 403, "Not our domain")
        return
    if authenticated(msg):
        registrar.save(msg, "location")


def authenticated(msg):
    """True when authentication is off or the request carries valid credentials of the
    From user; otherwise it was answered: challenged (again), or 403."""
    if not AUTH:
        return True
    result = auth.auth_check(msg, DOMAIN, "subscriber", SAME_USER)
    if result:
        auth.consume_credentials(msg)
        return True
    if result in (auth.INVALID_PASSWORD, auth.USER_UNKNOWN, auth.AUTH_USER_MISMATCH):
        sl.send_reply(msg, 403, "Forbidden")
    else:
        auth.auth_challenge(msg, DOMAIN)
    return False
