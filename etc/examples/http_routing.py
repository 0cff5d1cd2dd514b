"""Route each call by a plain-text HTTP lookup: the service answers ``sip:a@h1|sip:b@h2``.

For every new INVITE the script asks LOOKUP_URL + the called user, parks the call while
the lookup runs (other calls keep flowing), and then tries the answered URIs one after the
other (``serial``, the next on failure) or rings them all at once (``parallel``).
A lookup that fails or answers nothing gets the caller a 503 / 404.

Configuration:
  KAMROUTER_LOOKUP_URL  environment variable: the service URL, the called user is appended
                        (escaped). Default: DEFAULT_LOOKUP_URL.
  KAMROUTER_FORKING     ``serial`` (default) or ``parallel``.
  core.load_modules = ["http_client"] (or an [http_client] section) in the TOML config.
"""
from __future__ import annotations

import os

# checks, in-dialog requests
from kamrouter.default.routes import handled_before_routing, record_route
from kamrouter.script import http_client as http
from kamrouter.script import sl, tm

DEFAULT_LOOKUP_URL = "http://127.0.0.1:8000/lookup?user="
LOOKUP_URL = os.environ.get("KAMROUTER_LOOKUP_URL", DEFAULT_LOOKUP_URL)
PARALLEL = os.environ.get("KAMROUTER_FORKING", "serial") == "parallel"


async def request_route(msg):
    if handled_before_routing(msg):
        return
    answer = await http.query(LOOKUP_URL + http.escape_query(msg.ruri_user or ""), timeout=2.0)
    if answer.status != 200:
        sl.send_reply(msg, 503, "Lookup Failed")
        return
    uris = [uri.strip() for uri in answer.first_line.split("|") if uri.strip()]
    if not uris:
        sl.send_reply(msg, 404, "Not Found")
        return
    msg.ruri = uris[0]
    if PARALLEL:
        for uri in uris[1:]:
            tm.append_branch(msg, uri)
    else:
        msg.vars["next_uris"] = uris[1:]
        tm.on_failure(msg, "next_uri")
    record_route(msg)
    tm.relay(msg)


def next_uri(msg):
    """Failure route: try the next URI of the lookup answer, if any."""
    remaining = msg.vars["next_uris"]
    if remaining and not tm.is_canceled(msg):
        msg.ruri = remaining.pop(0)
        tm.on_failure(msg, "next_uri")
        tm.relay(msg)


