"""The ``[dispatcher]`` config section (Kamailio's module parameters, without the ``ds_``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kamrouter.config import Range, range_problems
from kamrouter.modules.dispatcher.keys import HashKeyTemplate
from kamrouter.modules.dispatcher.listfile import ListError, specs_from_tables
from kamrouter.modules.dispatcher.probing import parse_reply_codes
from kamrouter.net import parse_socket
from kamrouter.sip import sip_uri_problem


@dataclass
class DispatcherConfig:
    #: Kamailio-format list file (relative paths: against the config file's directory).
    #: Empty: only ``[[dispatcher.destination]]`` tables.
    list_file: str = ""
    #: ``[[dispatcher.destination]]`` tables: setid, uri, flags, priority, attrs (a string
    #: ``"weight=70;duid=a"`` or a table ``{weight = 70, duid = "a"}``). They are loaded
    #: with the list file and kept across reloads.
    destination: list[dict[str, Any]] = field(default_factory=list)

    #: Seconds between probing rounds; 0 turns probing off.
    ping_interval: float = 10.0
    #: Seconds a probe waits for its final reply (then it counts as a 408 failure).
    ping_timeout: float = 5.0
    ping_method: str = "OPTIONS"
    ping_from: str = "sip:dispatcher@localhost"
    #: Reply codes accepted as "alive" besides 2xx, Kamailio style: ``"code=404;class=4"``.
    ping_reply_codes: str = ""
    #: 0: ping targets with the probing flag (until they answer); 1: ping all targets;
    #: 2: ping only inactive targets with the probing flag; 3: like 0 but keep pinging.
    probing_mode: Literal[0, 1, 2, 3] = 0
    #: Consecutive failures (probes or script marks ``t``) before a target turns inactive.
    probing_threshold: int = 1
    #: Consecutive good probe replies before an inactive target is active again.
    inactive_threshold: int = 1
    #: Weight of the newest probe in the latency estimate (Kamailio's alpha / 1000).
    latency_alpha: float = 0.1
    #: Next hop for probes (a target's ``obproxy`` attr wins).
    outbound_proxy: str = ""
    #: Local socket for traffic and probes when a target has no ``socket`` attr.
    default_socket: str = ""

    #: Algorithm 7's key, e.g. ``"{from_user}@{call_id}"`` or ``"{header:X-Tenant}"``.
    hash_key: str = ""
    #: Algorithms 1-3 hash only the URI user (Kamailio ``flags`` bit 1).
    hash_user_only: bool = False
    #: "next": a dead target's share goes to the next live one (Kamailio); "spread": hash,
    #: random and weight algorithms re-pick among the live targets instead.
    dead_target_share: Literal["next", "spread"] = "next"
    #: The last target of each set is only used when no other is usable.
    use_default: bool = False
    #: select_dst overwrites a next hop the script already set (else it fails).
    force_dst: bool = True

    #: Algorithm 10: seconds a call counts after its 2xx / before any 2xx, and the sweep period.
    call_load_expire: float = 7200.0
    call_load_init_expire: float = 7200.0
    call_load_check_interval: float = 30.0

    #: Emit dispatcher:dst-up / dst-down for targets that appear (startup, reload, add), so
    #: a monitor learns the initial state.
    initial_events: bool = False

    def validate(self) -> list[str]:
        problems = range_problems(self, DISPATCHER_RANGES)
        for name in ("ping_from", "outbound_proxy"):
            value = getattr(self, name)
            problem = sip_uri_problem(value) if value else None
            if problem is not None:
                problems.append(f"{name}: {problem}")
        if not self.ping_method or not self.ping_method.isalpha():
            problems.append(f"ping_method: expected a SIP method name, got {self.ping_method!r}")
        try:
            parse_reply_codes(self.ping_reply_codes)
        except ValueError as exc:
            problems.append(f"ping_reply_codes: {exc}")
        if self.default_socket:
            try:
                parse_socket(self.default_socket)
            except ValueError as exc:
                problems.append(f"default_socket: {exc}")
        try:
            specs_from_tables(self.destination, "destination")
        except ListError as exc:
            problems.extend(exc.problems)
        if self.hash_key:
            try:
                HashKeyTemplate(self.hash_key)
            except ValueError as exc:
                problems.append(f"hash_key: {exc}")
        return problems


#: A probe every millisecond, or a threshold no target ever reaches, is a typo.
DISPATCHER_RANGES = {
    "ping_interval": Range(0.1, 86400, "s", off=0), "ping_timeout": Range(0.01, 300, "s"),
    "probing_threshold": Range(1, 1000), "inactive_threshold": Range(1, 1000),
    "latency_alpha": Range(0.001, 1), "call_load_expire": Range(1, 864000, "s"),
    "call_load_init_expire": Range(1, 864000, "s"),
    "call_load_check_interval": Range(0.1, 3600, "s"),
}
