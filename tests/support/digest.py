"""RFC 7616 digest answers for the test phones (qop=auth, MD5 or SHA-256)."""
from __future__ import annotations

import hashlib
import re

#: A challenge header in a reply's text: (WWW or Proxy, its value).
CHALLENGE = re.compile(r"^(WWW|Proxy)-Authenticate: (.*)$", re.MULTILINE | re.IGNORECASE)


def param(text: str, name: str) -> str | None:
    m = re.search(rf'{name}="?([^",]+)"?', text)
    return m.group(1) if m else None


def authorization(challenge_reply: str, user: str, password: str, method: str, uri: str,
                  algorithm: str = "MD5", nc: int = 1) -> str:
    """The Authorization (or Proxy-Authorization) header line answering the reply's
    challenge for ``algorithm``."""
    headers = [(kind, value.strip()) for kind, value in CHALLENGE.findall(challenge_reply)
               if f"algorithm={algorithm}" in value]
    assert headers, f"no {algorithm} challenge in:\n{challenge_reply}"
    kind, value = headers[0]
    realm, nonce = param(value, "realm"), param(value, "nonce")
    hashf = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def h(text: str) -> str:
        return hashf(text.encode()).hexdigest()

    ha1 = h(f"{user}:{realm}:{password}")
    cnonce, ncs = "0a4f113b", f"{nc:08x}"
    response = h(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{h(f'{method}:{uri}')}")
    name = "Authorization" if kind.lower() == "www" else "Proxy-Authorization"
    return (f'{name}: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{response}", algorithm={algorithm}, '
            f'cnonce="{cnonce}", nc={ncs}, qop=auth')
