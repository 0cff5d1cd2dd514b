"""TLS for SIP (``tls:`` listeners, ``sips:`` URIs, ``;transport=tls``) with the standard
library's :mod:`ssl` over trio: the ``[tls]`` config section and the SSL contexts built
from it.

Profiles follow Kamailio's tls module: one or more server profiles (the first without a
``server_name`` is the default; the others are chosen by the client's SNI) and one client
profile for outgoing connections, each with certificate, private key, CA list, whether to
verify the peer's certificate and whether to require one (mutual TLS), the lowest
protocol version (TLS 1.2 by default) and a cipher list. A handshake that does not finish in
``handshake_timeout`` seconds closes the connection.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from kamrouter.config import ConfigError, Range, range_problems

#: ``method`` values → the lowest version accepted.
METHODS = {"TLSv1.2+": ssl.TLSVersion.TLSv1_2, "TLSv1.3+": ssl.TLSVersion.TLSv1_3,
           "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass
class TlsProfile:
    #: PEM files; relative paths are resolved against the config file's directory.
    certificate: str = ""
    private_key: str = ""
    #: CA certificates to verify the peer with (empty: the system's, for clients).
    ca_list: str = ""
    #: Verify the peer's certificate (a client: the server's; a server: the client's, if
    #: it sends one).
    verify_certificate: bool = False
    #: A server profile: refuse clients that send no valid certificate (mutual TLS).
    require_certificate: bool = False
    #: Server: the SNI name this profile answers; client: the name sent and verified.
    server_name: str = ""
    method: str = "TLSv1.2+"
    #: OpenSSL cipher list for TLS 1.2 (empty: Python's defaults).
    cipher_list: str = ""

    def validate(self) -> list[str]:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method: expected one of {', '.join(METHODS)}, got {self.method!r}")
        if bool(self.certificate) != bool(self.private_key):
            problems.append("certificate, private_key: give both or neither")
        if self.require_certificate and not self.verify_certificate:
            problems.append("require_certificate: needs verify_certificate = true")
        return problems


@dataclass
class TlsConfig:
    """The ``[tls]`` section."""

    handshake_timeout: float = 5.0
    server: list[TlsProfile] = field(default_factory=list)
    client: TlsProfile = field(default_factory=TlsProfile)

    def validate(self) -> list[str]:
        problems = range_problems(self, {"handshake_timeout": Range(0.1, 60, "s")})
        defaults = [p for p in self.server if not p.server_name]
        if len(defaults) > 1:
            problems.append("server: more than one profile without server_name (the default)")
        for i, profile in enumerate(self.server):
            if not profile.certificate:
                problems.append(f"server[{i}].certificate: a server profile needs one")
        names = [p.server_name.lower() for p in self.server if p.server_name]
        if len(names) != len(set(names)):
            problems.append("server: two profiles with the same server_name")
        return problems


class TlsContexts:
    """The SSL contexts of one router: the server side (with SNI) and the client side."""

    def __init__(self, config: TlsConfig, base_dir: Path) -> None:
        self.config = config
        self._base = base_dir
        self.by_name: dict[str, ssl.SSLContext] = {}
        self.server: ssl.SSLContext | None = None
        for i, profile in enumerate(config.server):
            context = self._loaded(f"tls.server[{i}]", profile, ssl.Purpose.CLIENT_AUTH)
            if profile.server_name:
                self.by_name[profile.server_name.lower()] = context
            else:
                self.server = context
        if self.server is None and config.server:
            self.server = self.by_name[config.server[0].server_name.lower()]
        if self.server is not None and self.by_name:
            self.server.sni_callback = self._choose_by_sni
        self.client = self._loaded("tls.client", config.client, ssl.Purpose.SERVER_AUTH)
        self.client_server_name = config.client.server_name or None

    def _path(self, name: str) -> str:
        path = Path(name)
        return str(path if path.is_absolute() else self._base / path)

    def _loaded(self, key: str, profile: TlsProfile, purpose: ssl.Purpose) -> ssl.SSLContext:
        """:meth:`_context`, with a file that cannot be read or used named by its key."""
        try:
            return self._context(profile, purpose)
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(self._path(name) for name in (
                profile.certificate, profile.private_key, profile.ca_list) if name)
            raise ConfigError([f"{key}: cannot load {files}: {exc.strerror or exc}"]) from None

    def _context(self, profile: TlsProfile, purpose: ssl.Purpose) -> ssl.SSLContext:
        server_side = purpose is ssl.Purpose.CLIENT_AUTH
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side
                                 else ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = METHODS[profile.method]
        if not profile.method.endswith("+"):
            context.maximum_version = METHODS[profile.method]
        if profile.cipher_list:
            context.set_ciphers(profile.cipher_list)
        if profile.certificate:
            context.load_cert_chain(self._path(profile.certificate),
                                    self._path(profile.private_key))
        if profile.verify_certificate:
            if profile.ca_list:
                context.load_verify_locations(self._path(profile.ca_list))
            elif not server_side:
                context.load_default_certs(purpose)
            context.verify_mode = (ssl.CERT_REQUIRED if profile.require_certificate
                                   or not server_side else ssl.CERT_OPTIONAL)
            context.check_hostname = not server_side and bool(profile.server_name)
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _choose_by_sni(self, sock: ssl.SSLObject, name: str | None,
                       _default: ssl.SSLContext) -> None:
        context = self.by_name.get(name.lower()) if name else None
        if context is not None:
            sock.context = context
