"""A main signalling server for one domain: phones register to it and call each other.

- REGISTER for our domain must authenticate (digest, 401); the authenticated user must be
  the one registering. Phones behind NAT are registered at their public address.
- Requests from our users (From in our domain) must authenticate too (407), and may then call
  a registered user of the domain (the contacts rung by q: highest first, equal q at once) or
  anyone else through dispatcher set DS_SET.
- Strangers may call our users, but nothing else: no relaying (403).

Configuration:
  KAMROUTER_DOMAIN  environment variable: the domain (default example.com); it must also be
                    a [core] alias of the router, so that its URIs are "myself".
  KAMROUTER_DS_SET  dispatcher set for destinations outside the domain (default 1).
and the router's TOML config: [usrloc], [registrar], [auth], [nathelper], [dispatcher].
"""
from __future__ import annotations

import os

from kamrouter.default.routes import handled_before_routing  # checks, in-dialog requests
from kamrouter.script import auth, core, dispatcher, nathelper, registrar, rr, sl, tm

DOMAIN = os.environ.get("KAMROUTER_DOMAIN", "example.com")
DS_SET = int(os.environ.get("KAMROUTER_DS_SET", "1"))
#: nat_uac_test: private Contact, Via host is not the source, source port is not the Via port.
NAT_TESTS = 1 | 2 | 16
#: auth_check flag: the authenticated user must be the From user (and the To user of a
#: REGISTER): nobody registers or calls in someone else's name.
SAME_USER = 1
#: Replies after which the next (lower q) contacts are tried.
NEXT_CONTACTS_ON = "408|480|486|5[0-9][0-9]"


def request_route(msg):
    if handled_before_routing(msg):
        return None
    # [auth] credentials = "api": the HA1 comes from the routing API. Returning the awaitable
    # parks the request while the API is asked; a cached HA1 needs no wait (None).
    fetching = auth.fetch_credentials(msg, DOMAIN)
    if fetching is not None:
        return route_when_fetched(msg, fetching)
    route(msg)
    return None


async def route_when_fetched(msg, fetching):
    if await fetching:  # False: the API failed, the request was answered [auth] api_on_error
        route(msg)


def route(msg):
    behind_nat = nathelper.nat_uac_test(msg, NAT_TESTS)
    if msg.method == "REGISTER":
        register(msg, behind_nat)
        return
    if msg.method == "OPTIONS" and core.is_myself(msg.ruri) and msg.ruri_user is None:
        sl.send_reply(msg, 200, "OK")  # keep-alive / health check of the server itself
        return
    if core.is_myself(msg.from_uri):
        if not authenticated(msg):
            return
    elif not core.is_myself(msg.ruri):
        sl.send_reply(msg, 403, "Relaying Forbidden")
        return
    if behind_nat and msg.method == "INVITE":
        nathelper.fix_nated_contact(msg)  # the callee's in-dialog requests reach the NAT
    if msg.method in ("INVITE", "SUBSCRIBE", "REFER"):
        rr.record_route(msg)
    if core.is_myself(msg.ruri):
        to_local_user(msg)
    elif dispatcher.select_dst(msg, DS_SET, 4):
        tm.relay(msg)
    else:
        sl.send_reply(msg, 503, "No destination available")


def register(msg, behind_nat):
    if not core.is_myself(msg.to_uri):
        sl.send_reply(msg, 403, "Not our domain")
        return
    if not authenticated(msg):
        return
    if behind_nat:
        nathelper.fix_nated_register(msg)
    registrar.save(msg, "location")


def authenticated(msg):
    """True when the request carries valid credentials of the From user; otherwise it was
    answered: challenged (again), or 403 for a wrong password or another user's name."""
    result = auth.auth_check(msg, DOMAIN, "subscriber", SAME_USER)
    if result:
        auth.consume_credentials(msg)  # the callee has no business with our credentials
        return True
    if result in (auth.INVALID_PASSWORD, auth.USER_UNKNOWN, auth.AUTH_USER_MISMATCH):
        sl.send_reply(msg, 403, "Forbidden")
    else:  # no credentials, expired (stale=true) or replayed nonce
        auth.auth_challenge(msg, DOMAIN)
    return False


def to_local_user(msg):
    if not registrar.lookup(msg, "location"):
        sl.send_reply(msg, 404, "Not Found")
        return
    registrar.load_contacts(msg)  # contacts grouped by q, best first
    registrar.next_contacts(msg)
    tm.on_failure(msg, "next_contacts")
    tm.relay(msg)


def next_contacts(msg):
    """Failure route: ring the next group of contacts (lower q) if the last one failed."""
    if tm.is_canceled(msg) or not tm.check_status(msg, NEXT_CONTACTS_ON):
        return
    if registrar.next_contacts(msg):
        tm.on_failure(msg, "next_contacts")
        tm.relay(msg)
