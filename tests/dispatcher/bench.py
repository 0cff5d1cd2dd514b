"""Helpers of the dispatcher unit tests: real SIP messages, a dispatcher on a fake clock."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamrouter.core.settings import Settings
from kamrouter.modules.dispatcher.api import DispatcherApi
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.listfile import parse_list
from kamrouter.net import Endpoint
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import make_request, parse
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_msg(method: str = "INVITE", ruri: str = "sip:bob@example.net",
             call_id: str = "call-1@test", from_uri: str = "sip:alice@example.com",
             to_uri: str | None = None, headers: tuple[tuple[str, str], ...] = (),
             source: Endpoint = Endpoint("udp", "127.0.0.1", 5999),
             branch: str = "z9hG4bKtest") -> ScriptMessage:
    """A parsed request as the script would get it."""
    request = make_request(method, ruri, from_uri=from_uri, to_uri=to_uri or ruri,
                           via=f"SIP/2.0/UDP 127.0.0.1:5999;branch={branch}",
                           call_id=call_id, from_tag="ft", headers=headers)
    return ScriptMessage(parse(request.to_bytes()), source, None)


class Events(list[tuple[str, dict[str, Any]]]):
    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.append((event, data))

    def names(self) -> list[tuple[str, str]]:
        return [(event, data["uri"]) for event, data in self]


class Bench:
    """A dispatcher with its API, on a fake clock, loaded from list-file text."""

    def __init__(self, text: str, list_path: Path | None = None, **config: Any) -> None:
        self.clock = FakeClock()
        self.scheduler = Scheduler(self.clock)
        self.stats = StatsRegistry()
        self.events = Events()
        self.config = DispatcherConfig(**config)
        assert not self.config.validate(), self.config.validate()
        self.ds = Dispatcher(self.config, self.stats, self.clock, self.events,
                             list_path=list_path, rng=random.Random(5),
                             wall_clock=lambda: 1_700_000_000.0 + self.clock.now)
        self.ds.replace_list(parse_list(text, "test.list"))
        self.api = DispatcherApi(self.ds)

    def dest(self, setid: int, uri: str) -> Any:
        (found,) = self.ds.list.find(setid, uri)
        return found

    def flags(self, setid: int, uri: str) -> int:
        return self.dest(setid, uri).health.flags


@dataclass
class StandInRouter:
    """What the dispatcher module uses of the router: real registries and scheduler on a
    fake clock; probes, events and transaction-end callbacks recorded."""

    settings: Settings
    clock: FakeClock = field(default_factory=FakeClock)
    stats: StatsRegistry = field(default_factory=StatsRegistry)
    rpc: MethodRegistry = field(default_factory=MethodRegistry)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    probes: list[tuple[str, Any]] = field(default_factory=list)
    transaction_end: list[Callable[[Any], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock)

    def emit(self, event: str, **data: Any) -> None:
        self.events.append((event, data))

    def send_request(self, method: str, ruri: str, **kwargs: Any) -> None:
        self.probes.append((ruri, kwargs["on_reply"]))

    def on_transaction_end(self, callback: Callable[[Any], None]) -> None:
        self.transaction_end.append(callback)

    def on_terminated(self, txn: Any) -> None:
        """tm's hook (a transaction layer may be built on this router): as the router does,
        run what the modules registered."""
        for callback in self.transaction_end:
            callback(txn)
