"""The pike module: config section, script API, pike.* RPC methods and pike: statistics;
with several worker processes, bans and request counts are shared by the state bus (:mod:`.bus_link`)."""
from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kamrouter.config import Range, range_problems
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.permissions.address import parse_ip
from kamrouter.modules.pike.bus_link import PikeBus
from kamrouter.modules.pike.table import OK, PikeTable
from kamrouter.rpc.registry import MethodRegistry, RpcError

if TYPE_CHECKING:
    from kamrouter.script.message import ScriptMessage


@dataclass
class PikeConfig:
    #: Seconds of one sampling window (Kamailio's default 2).
    sampling_time_unit: int = 2
    #: Requests allowed per source and window; more is a flood (Kamailio's default 30).
    reqs_density_per_unit: int = 30
    #: Seconds a source is remembered after its last request (Kamailio's default 120).
    remove_latency: int = 120
    #: Seconds a flooding source stays banned (Kamailio's stock config: 300 in an htable);
    #: 0: blocked only while it exceeds the limit, as Kamailio's pike alone does.
    ban_time: int = 300
    #: Sources (and bans) kept at most; beyond, the longest idle ones are forgotten.
    max_sources: int = 65536

    def validate(self) -> list[str]:
        return range_problems(self, PIKE_RANGES)


PIKE_RANGES = {
    "sampling_time_unit": Range(1, 3600, "s"), "reqs_density_per_unit": Range(1, 1_000_000),
    "remove_latency": Range(1, 86400, "s"), "ban_time": Range(1, 30 * 86400, "s", off=0),
    "max_sources": Range(16, 10_000_000),
}


class PikeApi:
    """``from kamrouter.script import pike``::

        if not pike.check_req(msg): return     # flooding: drop (Kamailio: pike_check_req)
        pike.ban("192.0.2.7", 3600, "fraud"); pike.unban("192.0.2.7"); pike.is_banned(ip)
    """

    def __init__(self, table: PikeTable) -> None:
        self._table = table

    def check_req(self, msg: ScriptMessage) -> bool:
        """Count the request against its source; False when the source floods or is banned."""
        return self._table.check(msg.source.host) == OK

    def ban(self, ip: str, seconds: float | None = None, reason: str = "script") -> None:
        self._table.ban(ip, self._table.ban_time if seconds is None else seconds, reason)

    def unban(self, ip: str) -> bool:
        return self._table.unban(ip)

    def is_banned(self, ip: str) -> bool:
        return self._table.banned(ip)


class PikeModule(Module):
    name = "pike"
    Config = PikeConfig

    def __init__(self, router: RouterServices, config: PikeConfig) -> None:
        super().__init__(router, config)
        self.table = table = PikeTable(
            config.sampling_time_unit, config.reqs_density_per_unit, config.remove_latency,
            config.ban_time, config.max_sources, router.clock)
        if router.bus is not None:  # several workers: a ban applies in all of them
            PikeBus(router.bus, table, router.scheduler)
        stats = router.stats
        # Each worker refuses the requests the kernel gives it; the sources and their counts
        # (and bans) are the router's in every worker (the state bus), so they count once.
        stats.gauge("pike", "blocked_requests", lambda: table.blocked, per_process=True)
        stats.gauge("pike", "detected_floods", lambda: table.detected, per_process=True)
        stats.gauge("pike", "evicted_sources", lambda: table.evicted)

        def live(entries: Sized) -> Callable[[], int]:
            def count() -> int:
                table.expire()
                return len(entries)
            return count

        stats.gauge("pike", "tracked_sources", live(table.sources))
        stats.gauge("pike", "banned_sources", live(table.bans))
        self._api = PikeApi(table)
        self.register_rpc(router.rpc)

    def api(self) -> PikeApi:
        return self._api

    def register_rpc(self, registry: MethodRegistry) -> None:
        registry.register("pike.top", self.top)
        registry.register("pike.list", self.list)
        registry.register("pike.ban", self.ban)
        registry.register("pike.unban", self.unban)

    def top(self, filter: str = "HOT") -> dict[str, Any]:  # noqa: A002 - Kamailio's name
        """Sources seen by pike_check_req, busiest first: HOT (flooding or banned, the
        default), WARM (above half the limit) or ALL. {max_hits, list: [{ip_addr,
        leaf_hits_prev, leaf_hits_curr, expires, status, ban_expires, reason}],
        number_of_rows}."""
        wanted = filter.upper()
        if wanted not in ("HOT", "WARM", "ALL"):
            raise RpcError(500, "Bad argument. Select: ALL, HOT or WARM")
        rows = self.table.rows(wanted)
        return {"max_hits": self.table.density, "list": rows, "number_of_rows": len(rows)}

    def list(self, filter: str = "HOT") -> dict[str, Any]:  # noqa: A002,A003
        """Same as pike.top (Kamailio 5.6 has both names)."""
        return self.top(filter)

    def ban(self, ip: str, seconds: int | None = None, reason: str = "rpc") -> str:
        """Ban a source IP for seconds (default ban_time); its requests are dropped."""
        address = parse_ip(ip)
        if address is None:
            raise RpcError(400, f"Invalid Parameters: not an IP address: {ip!r}")
        length = self.table.ban_time if seconds is None else seconds
        if not 0 < length <= 30 * 86400:
            raise RpcError(400, "Invalid Parameters: seconds must be 1 to 2592000")
        self.table.ban(str(address), length, reason)
        return f"Ok. {address} banned for {length} s"

    def unban(self, ip: str) -> str:
        """Lift the ban of a source IP and forget its request counts."""
        address = parse_ip(ip)
        if address is None:
            raise RpcError(400, f"Invalid Parameters: not an IP address: {ip!r}")
        if not self.table.unban(str(address)):
            raise RpcError(404, f"Not banned: {address}")
        return f"Ok. {address} unbanned"
