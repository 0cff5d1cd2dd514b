"""The ``[evapi]`` config section: where evapi listens and what bounds its clients."""
from __future__ import annotations

from dataclasses import dataclass

from kamrouter.boundedjson import MAX_DEPTH, MAX_INT_DIGITS, JsonLimits
from kamrouter.config import Range, range_problems


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8448"`` or ``"[::1]:8448"`` -> (host, port); ValueError names the problem."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"port must be a number 0-65535, got {port_text!r}")
    return host, int(port_text)


#: (low, high) of the numeric keys; 0 turns ``idle_timeout`` off and is checked apart.
RANGES = {
    "max_clients": Range(1, 10000),
    "max_clients_per_ip": Range(1, 10000),
    "queue_size": Range(1, 1 << 20),
    "send_timeout": Range(0.1, 3600, "s"),
    "max_message_size": Range(64, 16 << 20, "bytes"),
    "idle_timeout": Range(1, 7 * 86400, "s", off=0),
    "handshake_timeout": Range(0.1, 60, "s"),
    "max_json_depth": Range(2, 512),
    "max_json_digits": Range(20, 1000),
}


@dataclass
class EvapiConfig:
    bind_addr: str = "127.0.0.1:8448"
    netstring_format: bool = True
    max_clients: int = 8
    #: Clients from one source address at once (a host cannot take every slot).
    max_clients_per_ip: int = 4
    #: Events queued per client before further ones are dropped (and counted).
    queue_size: int = 1024
    #: Seconds one write to a client may take before the client is closed as dead.
    send_timeout: float = 5.0
    #: Largest netstring accepted from a client, bytes.
    max_message_size: int = 32768
    #: Seconds without a byte from a client before it is closed (0: never). A controller
    #: that only listens keeps its connection by sending a newline now and then.
    idle_timeout: float = 3600.0
    #: File holding a shared secret: when set, a client's first message must be the secret
    #: (within handshake_timeout), or the client is closed without seeing any event.
    secret_file: str = ""
    handshake_timeout: float = 5.0
    #: Deepest nesting and longest integer of JSON messages; beyond, a message is dropped
    #: and counted in ``evapi:refused_json_limit``.
    max_json_depth: int = MAX_DEPTH
    max_json_digits: int = MAX_INT_DIGITS

    def validate(self) -> list[str]:
        problems = []
        try:
            split_host_port(self.bind_addr)
        except ValueError as exc:
            problems.append(f"bind_addr: {exc}")
        return problems + range_problems(self, RANGES)

    def json_limits(self) -> JsonLimits:
        return JsonLimits(self.max_json_depth, self.max_json_digits, "evapi.")
