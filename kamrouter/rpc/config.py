"""The ``[rpc]`` config section: where the control plane listens and what bounds its clients.

The policy (README "Control plane"): the Unix sockets and the FIFO live in a private run
directory; HTTP is off unless configured, binds loopback for a bare port, and needs
credentials (``http_auth_file``) to bind any other address. Unix-socket clients and HTTP
clients have separate limits, so network clients cannot lock the local operator out.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from kamrouter.boundedjson import MAX_DEPTH, MAX_INT_DIGITS, JsonLimits
from kamrouter.config import Range, range_problems


def default_run_dir() -> str:
    """Where control sockets live: ``$XDG_RUNTIME_DIR/kamrouter`` or ``/tmp/kamrouter-$UID``.

    kamcli computes the same path, so both agree with no options at all.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "kamrouter") if base else f"/tmp/kamrouter-{os.getuid()}"


#: (low, high) of the numeric keys; the messages name the key and the range.
RANGES = {
    "max_request_size": Range(256, 64 << 20, "bytes"),
    "max_clients": Range(1, 10000),
    "http_max_clients": Range(1, 10000),
    "client_timeout": Range(0.1, 3600, "s"),
    "idle_timeout": Range(1, 86400, "s"),
    "max_json_depth": Range(2, 512),
    "max_json_digits": Range(20, 1000),
}


@dataclass
class RpcConfig:
    run_dir: str = field(default_factory=default_run_dir)
    #: Unix stream socket path (``{run_dir}/kamrouter_rpc.sock``), empty string to disable.
    stream_socket: str | None = None
    #: Unix datagram socket, Kamailio jsonrpcs compatible; off unless set.
    dgram_socket: str = ""
    #: FIFO path, Kamailio jsonrpcs compatible; off unless set.
    fifo: str = ""
    fifo_reply_dir: str = "/tmp"
    #: ``host:port`` of the HTTP listener (POST /RPC, GET /metrics); off unless set.
    http: str = ""
    #: File of HTTP credentials, one per line: a bearer token, or ``user:password`` for
    #: basic auth. When set, every HTTP request must carry one; required for a
    #: non-loopback ``http`` address.
    http_auth_file: str = ""
    mode: int = 0o660
    user: str = ""
    group: str = ""
    #: Largest accepted request document, bytes (bigger ones get an error, then a close).
    max_request_size: int = 1 << 20
    #: Concurrent Unix stream socket connections; more are refused with an error reply.
    max_clients: int = 64
    #: Concurrent HTTP connections (counted apart from the Unix socket's clients).
    http_max_clients: int = 16
    #: Seconds a client may take to finish sending a request, or to read its reply.
    client_timeout: float = 10.0
    #: Seconds an idle stream/HTTP connection stays open (kamcli shell reconnects after).
    idle_timeout: float = 300.0
    #: Deepest nesting of arrays/objects in a request; deeper ones get a Parse error.
    max_json_depth: int = MAX_DEPTH
    #: Longest integer in a request, digits; longer ones get a Parse error.
    max_json_digits: int = MAX_INT_DIGITS

    def validate(self) -> list[str]:
        problems = []
        try:
            address = self.http_address()
        except ValueError as exc:
            problems.append(f"http: {exc}")
        else:
            if address is not None and not self.http_auth_file and not is_loopback(address[0]):
                problems.append(f"http: {address[0]} is not a loopback address: set "
                                "rpc.http_auth_file (credentials) to serve RPC on the network")
        if not 0 <= self.mode <= 0o777:
            problems.append(f"mode: expected a permission mode like 0o660, got {self.mode:#o}")
        return problems + range_problems(self, RANGES)

    def http_address(self) -> tuple[str, int] | None:
        """``"8080"`` → loopback:8080; ``"0.0.0.0:8080"``, ``"[::1]:8080"``; ``""`` → off."""
        if not self.http:
            return None
        host, sep, port_text = self.http.rpartition(":")
        if not sep:
            host = "127.0.0.1"
        host = host.strip("[]")
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536 or (sep and not host):
            raise ValueError(f"expected [host:]port, e.g. 127.0.0.1:8080, got {self.http!r}")
        return host, int(port_text)

    def json_limits(self) -> JsonLimits:
        return JsonLimits(self.max_json_depth, self.max_json_digits, "rpc.")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; a name that is not an address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
