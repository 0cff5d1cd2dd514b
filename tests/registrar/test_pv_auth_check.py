"""auth.pv_auth_check: digest verified against an HA1 or password the script supplies (an
htable, the routing API), not the subscriber table."""
from __future__ import annotations

import re
from pathlib import Path

from kamrouter.core.settings import Settings
from kamrouter.modules.auth.api import AuthApi, AuthResult
from kamrouter.modules.auth.config import AuthConfig
from kamrouter.modules.auth.digest import ha1, response
from kamrouter.modules.auth.module import AuthModule
from kamrouter.net import Endpoint
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import parse

from support.doubles import StandInRouter

REALM = "example.com"
URI = "sip:example.com"


def auth_api(tmp_path: Path) -> AuthApi:
    module = AuthModule(StandInRouter(Settings(base_dir=tmp_path)), AuthConfig())
    return module.api()


def register(api: AuthApi, password: str, nc: int, algorithm: str = "MD5") -> ScriptMessage:
    """A REGISTER from alice answering a fresh challenge of ``api`` with ``password``."""
    nonce = re.search(r'nonce="([^"]+)"', api.challenge_headers(REALM)[0]).group(1)  # type: ignore[union-attr]
    count = f"{nc:08x}"
    digest = response(algorithm, ha1(algorithm, "alice", REALM, password), nonce, "REGISTER",
                      URI, qop="auth", nc=count, cnonce="c0ffee")
    text = (f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{nc}\r\n"
            f"From: <sip:alice@{REALM}>;tag=1\r\nTo: <sip:alice@{REALM}>\r\n"
            f"Call-ID: c{nc}\r\nCSeq: {nc} REGISTER\r\nMax-Forwards: 70\r\n"
            f'Authorization: Digest username="alice", realm="{REALM}", nonce="{nonce}", '
            f'uri="{URI}", response="{digest}", algorithm={algorithm}, qop=auth, '
            f'nc={count}, cnonce="c0ffee"\r\n'
            "Content-Length: 0\r\n\r\n")
    return ScriptMessage(parse(text.encode()), Endpoint("udp", "127.0.0.1", 5070), None)


def test_an_ha1_from_the_script_authenticates_and_a_wrong_password_does_not(
        tmp_path: Path) -> None:
    api = auth_api(tmp_path)
    stored = ha1("MD5", "alice", REALM, "secret")  # e.g. htable "ha1" => alice
    assert api.pv_auth_check(register(api, "secret", 1), REALM, stored, 1) \
        is AuthResult.AUTHENTICATED
    assert api.pv_auth_check(register(api, "wrong", 2), REALM, stored, 1) \
        is AuthResult.INVALID_PASSWORD
    assert api.pv_auth_check(register(api, "secret", 3), REALM, "", 1) \
        is AuthResult.USER_UNKNOWN  # nothing found for the user


def test_a_clear_password_and_an_ha1_of_the_other_algorithm(tmp_path: Path) -> None:
    api = auth_api(tmp_path)
    assert api.pv_auth_check(register(api, "secret", 1), REALM, "secret", 0) \
        is AuthResult.AUTHENTICATED
    sha = ha1("SHA-256", "alice", REALM, "secret")
    assert api.pv_auth_check(register(api, "secret", 2, "SHA-256"), REALM, sha, 1) \
        is AuthResult.AUTHENTICATED
    assert api.pv_auth_check(register(api, "secret", 3), REALM, sha, 1) \
        is AuthResult.USER_UNKNOWN  # an SHA-256 HA1 cannot check MD5 credentials
