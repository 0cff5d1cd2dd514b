"""trio transports: UDP and TCP listeners and the send path used by the proxy and tm."""
from kamrouter.transport.manager import Transports

__all__ = ["Transports"]
