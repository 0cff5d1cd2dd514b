"""The auth script API (Kamailio auth + auth_db): ``from kamrouter.script import auth``.

``auth_check(msg, realm, "subscriber", flags)`` verifies the credentials of a request (www
for REGISTER, proxy otherwise) and returns Kamailio's codes (falsy when not positive);
``auth_challenge`` answers 401/407 offering every configured algorithm with one nonce, and
``stale=true`` after an expired nonce. ``consume_credentials`` removes the checked header
before the request is relayed.

``pv_auth_check(msg, realm, passwd, flags, checks)`` (Kamailio auth's) verifies against a
secret the script supplies instead of the subscriber table: an HA1 (flags 1) read from an
htable, or fetched from the routing API by an async hook, or a clear password (flags 0).

With ``[auth] credentials = "api"`` the HA1 values come from the routing API
(:mod:`.apisource`): ``fetch_credentials(msg, realm)`` returns None when auth_check can
answer at once (cached, or no credentials worth asking about), else an awaitable for the
route to return (the request is parked while the API is asked) that is True once
auth_check can answer, False when the API failed and the request got ``api_on_error``.
"""
from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from kamrouter.modules.auth.apisource import LookupFailed
from kamrouter.modules.auth.cache import Key
from kamrouter.modules.auth.digest import ALGORITHMS, HA1_LENGTH, ha1, response
from kamrouter.modules.auth.subscribers import Subscriber
from kamrouter.modules.auth.nonce import NonceState
from kamrouter.script.message import ScriptMessage
from kamrouter.script.results import ReturnCode
from kamrouter.sip import Credentials, SipParseError

if TYPE_CHECKING:
    from kamrouter.modules.auth.module import AuthModule

#: msg.vars keys: which header the checked credentials came from; the last failure reason.
CREDENTIALS_VAR = "auth_header"
STALE_VAR = "auth_stale"
#: msg.vars key: (username, realm) and what the routing API answered for them.
API_CREDENTIALS_VAR = "auth_api_credentials"
#: Longer usernames (or realms) are unknown users, never asked about nor cached: the cache's
#: memory stays bounded by its entry counts.
MAX_API_NAME = 256

#: auth_check flags (Kamailio): 1 the authenticated user must be the From user (and To for
#: REGISTER); 2 with 1, skip that check for INVITE, BYE, PRACK, UPDATE and MESSAGE.
CHECK_IDENTITY = 1
SKIP_IDENTITY_FOR_CALLS = 2
_CALL_METHODS = frozenset({"INVITE", "BYE", "PRACK", "UPDATE", "MESSAGE"})
#: Challenge flags (Kamailio): 16 add stale=true. qop comes from [auth] qop.
STALE = 16
#: pv_auth_check flags (Kamailio): 1 the secret given is the HA1, not the password.
SECRET_IS_HA1 = 1

#: The HA1 for (username, algorithm), "" when there is none, None when it is not known here
#: (the routing API was not asked).
SecretLookup = Callable[[str, str], "str | None"]


class _SecretNeeded(Exception):
    """Raised by the secret lookup of :meth:`AuthApi.fetch_credentials`'s dry run."""

    def __init__(self, user: str) -> None:
        self.user = user


class AuthResult(ReturnCode):
    """Kamailio's auth return codes."""

    AUTHENTICATED = 1
    ERROR = -1
    INVALID_PASSWORD = -2
    USER_UNKNOWN = -3
    NONCE_EXPIRED = -4
    NO_CREDENTIALS = -5
    NONCE_REUSED = -6
    AUTH_USER_MISMATCH = -8


class AuthApi:
    def __init__(self, module: AuthModule) -> None:
        self._m = module

    # -- challenges ---------------------------------------------------------------------------
    def challenge_headers(self, realm: str, stale: bool = False, request: str = "") -> list[str]:
        """One Digest challenge per configured algorithm, sharing one nonce (the same again
        for a retransmission of ``request``, see :mod:`.nonce`)."""
        cfg = self._m.config
        nonce = self._m.nonces.make(self._m.clock(), request)
        extra = (f', qop="{cfg.qop}"' if cfg.qop else "") + (", stale=true" if stale else "")
        realm = realm.replace("\\", "").replace('"', "")
        return [f'Digest realm="{realm}", nonce="{nonce}"{extra}, algorithm={algorithm}'
                for algorithm in cfg.algorithms]

    def _challenge(self, msg: ScriptMessage, realm: str | None, flags: int, status: int) -> bool:
        realm = realm or _default_realm(msg)
        stale = bool(flags & STALE) or bool(msg.vars.pop(STALE_VAR, False))
        name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
        self._m.challenges.inc()
        try:
            request = _request_key(msg)
        except SipParseError:  # no use for a key: its challenge is simply a new one
            request = ""
        headers = tuple((name, value) for value in self.challenge_headers(realm, stale, request))
        return self._m.router.send_reply(msg, status, reason, headers)

    def www_challenge(self, msg: ScriptMessage, realm: str | None = None, flags: int = 0) -> bool:
        """Reply 401 with WWW-Authenticate (realm default: the From domain)."""
        return self._challenge(msg, realm, flags, 401)

    def proxy_challenge(self, msg: ScriptMessage, realm: str | None = None,
                        flags: int = 0) -> bool:
        """Reply 407 with Proxy-Authenticate."""
        return self._challenge(msg, realm, flags, 407)

    def auth_challenge(self, msg: ScriptMessage, realm: str | None = None,
                       flags: int = 0) -> bool:
        """401 for REGISTER, 407 for everything else."""
        return self._challenge(msg, realm, flags, 401 if msg.method == "REGISTER" else 407)

    # -- verification --------------------------------------------------------------------------
    def www_authenticate(self, msg: ScriptMessage, realm: str | None = None,
                         table: str = "subscriber", method: str | None = None) -> AuthResult:
        """Check Authorization against the subscriber table."""
        return self._verify(msg, realm or _default_realm(msg), "Authorization", method, 0)

    def proxy_authenticate(self, msg: ScriptMessage, realm: str | None = None,
                           table: str = "subscriber") -> AuthResult:
        """Check Proxy-Authorization against the subscriber table."""
        return self._verify(msg, realm or _default_realm(msg), "Proxy-Authorization", None, 0)

    def auth_check(self, msg: ScriptMessage, realm: str | None = None,
                   table: str = "subscriber", flags: int = 0) -> AuthResult:
        """www_authenticate for REGISTER, proxy_authenticate otherwise; flags 1 (and 2):
        the authenticated user must be the From (and To) user."""
        header = "Authorization" if msg.method == "REGISTER" else "Proxy-Authorization"
        return self._verify(msg, realm or _default_realm(msg), header, None, flags)

    def pv_auth_check(self, msg: ScriptMessage, realm: str | None, passwd: str,
                      flags: int = SECRET_IS_HA1, checks: int = 0) -> AuthResult:
        """auth_check against ``passwd`` instead of the subscriber table: the HA1 when
        flags has 1 (MD5's 32 hex digits or SHA-256's 64: credentials of the other
        algorithm do not match), else the clear password; checks as auth_check's flags."""
        realm = realm or _default_realm(msg)
        header = "Authorization" if msg.method == "REGISTER" else "Proxy-Authorization"

        def secret(user: str, algorithm: str) -> str:
            if not passwd or not isinstance(passwd, str):  # e.g. an htable miss or integer
                return ""
            if flags & SECRET_IS_HA1:
                return passwd.lower() if len(passwd) == HA1_LENGTH[algorithm] else ""
            return ha1(algorithm, user, realm, passwd)

        return self._verify(msg, realm, header, None, checks, secret)

    def fetch_credentials(self, msg: ScriptMessage, realm: str | None = None
                          ) -> Awaitable[bool] | None:
        """With credentials = "api": an awaitable asking the API for the HA1 of the
        credentials auth_check will check (Authorization for REGISTER, else
        Proxy-Authorization), or None when there is nothing to wait for (see the module
        doc). Without the API source, always None."""
        source = self._m.api_source
        if source is None:
            return None
        realm = realm or _default_realm(msg)
        header = "Authorization" if msg.method == "REGISTER" else "Proxy-Authorization"

        def reached(user: str, algorithm: str) -> str:
            raise _SecretNeeded(user)

        try:  # a dry run of the checks: bad credentials or nonces are not worth a query
            self._check(msg, realm, header, None, 0, reached)
            return None
        except SipParseError:
            return None
        except _SecretNeeded as needed:
            key = (needed.user, realm)
        if len(key[0]) > MAX_API_NAME or len(realm) > MAX_API_NAME:
            msg.vars[API_CREDENTIALS_VAR] = (key, None)  # unknown, without asking or caching
            return None
        entry = source.cached(key)
        if entry is not None:
            msg.vars[API_CREDENTIALS_VAR] = (key, entry.subscriber)
            return None
        return self._fetch(msg, key)

    async def _fetch(self, msg: ScriptMessage, key: Key) -> bool:
        source = self._m.api_source
        assert source is not None
        try:
            subscriber = await source.lookup(key)
        except LookupFailed:
            fallback = self._m.config.api_fallback
            self._m.router.send_reply(msg, fallback.code, fallback.reason)
            return False
        msg.vars[API_CREDENTIALS_VAR] = (key, subscriber)
        return True

    def has_credentials(self, msg: ScriptMessage, realm: str | None = None) -> bool:
        realm = realm or _default_realm(msg)
        return any(self._credentials(msg, name, realm) is not None
                   for name in ("Authorization", "Proxy-Authorization"))

    def consume_credentials(self, msg: ScriptMessage) -> bool:
        """Remove the header whose credentials were checked (before relaying)."""
        name = msg.vars.get(CREDENTIALS_VAR)
        return isinstance(name, str) and bool(name) and msg.remove_header(name) > 0

    @staticmethod
    def _credentials(msg: ScriptMessage, header: str, realm: str) -> Credentials | None:
        sip = msg.sip
        try:
            values = sip.authorization if header == "Authorization" else sip.proxy_authorization
        except SipParseError:
            return None
        return next((c for c in values if c.is_digest and c.realm == realm), None)

    def _verify(self, msg: ScriptMessage, realm: str, header: str, method: str | None,
                flags: int, secret: SecretLookup | None = None) -> AuthResult:
        try:
            result = self._check(msg, realm, header, method, flags,
                                 secret or self._table_secret(msg, realm))
        except SipParseError:  # a header the checks read is malformed
            result = AuthResult.ERROR
        counter = self._m.results.get(result)
        if counter is not None:
            counter.inc()
        if result is AuthResult.NONCE_EXPIRED:
            msg.vars[STALE_VAR] = True
        return result

    def _table_secret(self, msg: ScriptMessage, realm: str) -> SecretLookup:
        """HA1 values from the subscriber table (auth_db), or from what the routing API
        answered (fetch_credentials, or the cache)."""
        m = self._m
        source = m.api_source
        if source is None:
            def secret(user: str, algorithm: str) -> str | None:
                subscriber = m.subscribers.find(user, realm if m.config.use_domain else None)
                return subscriber.ha1_for(algorithm) if subscriber is not None else ""
            return secret

        def api_secret(user: str, algorithm: str) -> str | None:
            found: tuple[Key, Subscriber | None] | None = msg.vars.get(API_CREDENTIALS_VAR)
            if found is not None and found[0] == (user, realm):
                subscriber = found[1]
            else:  # the script did not fetch: only the cache can tell
                entry = source.cache.get((user, realm), m.router.clock())
                if entry is None:
                    return None
                subscriber = entry.subscriber
            return subscriber.ha1_for(algorithm) if subscriber is not None else ""
        return api_secret

    def _check(self, msg: ScriptMessage, realm: str, header: str, method: str | None,
               flags: int, secret: SecretLookup) -> AuthResult:
        m = self._m
        creds = self._credentials(msg, header, realm)
        if creds is None:
            return AuthResult.NO_CREDENTIALS
        get = creds.params.get  # the parameters themselves, not a property each
        username, nonce, uri, given = get("username"), get("nonce"), get("uri"), get("response")
        algorithm = get("algorithm") or "MD5"
        if not (username and nonce and uri and given) or algorithm not in ALGORITHMS \
                or algorithm not in m.config.algorithms:
            return AuthResult.ERROR
        qop, nc, cnonce = get("qop"), get("nc"), get("cnonce")
        offered = m.config.qop.split(",") if m.config.qop else []
        if (qop or offered) and qop not in offered:
            return AuthResult.ERROR
        if qop and not (nc and cnonce):
            return AuthResult.ERROR
        counted = nc if qop and m.config.nonce_count else None
        now = m.clock()
        request = _request_key(msg) if counted is not None else ""
        state = m.nonces.check(nonce, now, counted, request)
        if state is NonceState.STALE:
            return AuthResult.NONCE_EXPIRED
        if state is NonceState.REPLAYED:
            return AuthResult.NONCE_REUSED
        user = username.partition("@")[0] if "@" in username else username
        ha1_value = secret(user, algorithm)
        if ha1_value is None:
            return AuthResult.ERROR
        if not ha1_value:
            return AuthResult.USER_UNKNOWN
        expected = response(algorithm, ha1_value, nonce, method or msg.method, uri, qop=qop,
                            nc=nc, cnonce=cnonce, body=msg.sip.body)
        if not hmac.compare_digest(expected, given.lower()):
            return AuthResult.INVALID_PASSWORD
        if flags & CHECK_IDENTITY and not (flags & SKIP_IDENTITY_FOR_CALLS
                                           and msg.method in _CALL_METHODS):
            users = [msg.from_user] + ([msg.to_user] if msg.method == "REGISTER" else [])
            if any(u != user for u in users):
                return AuthResult.AUTH_USER_MISMATCH
        if counted is not None:
            m.nonces.use(nonce, counted, now, request)
        msg.vars[CREDENTIALS_VAR] = header
        return AuthResult.AUTHENTICATED


def _request_key(msg: ScriptMessage) -> str:
    """What a retransmission repeats and a new request changes (RFC 3261 §17.2.3)."""
    sip = msg.sip
    return f"{sip.call_id}|{sip.cseq.number}|{sip.via.branch}"


def _default_realm(msg: ScriptMessage) -> str:
    try:
        uri = msg.sip.from_.uri
    except SipParseError:
        return ""
    return getattr(uri, "host", "") or ""


# The codes as attributes of the API too: ``if result == auth.INVALID_PASSWORD``.
for _code in AuthResult:
    setattr(AuthApi, _code.name, _code)
