"""Next-hop name resolution: RFC 3263 (NAPTR → SRV → A/AAAA) with a TTL-respecting cache
shared by all calls (:mod:`.resolver`), the lookup procedure itself as pure code
(:mod:`.rfc3263`), and the destination blocklist (:mod:`.blocklist`)."""
from kamrouter.dns.blocklist import Blocklist
from kamrouter.dns.config import BlocklistConfig, DnsConfig
from kamrouter.dns.resolver import Resolver, ip_literal
from kamrouter.dns.rfc3263 import Query

__all__ = ["Blocklist", "BlocklistConfig", "DnsConfig", "Query", "Resolver", "ip_literal"]
