"""Helpers of the dispatcher unit tests: real SIP messages, a dispatcher on a fake clock."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from kamrouter.modules.dispatcher.api import DispatcherApi
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.listfile import parse_list
from kamrouter.net import Endpoint
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import make_request, parse
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler
from support.doubles import FakeClock


SOURCE = Endpoint("udp", "127.0.0.1", 5999)


def make_msg(method: str = "INVITE", ruri: str = "sip:bob@example.net",
             call_id: str = "call-1@test", from_uri: str = "sip:alice@example.com",
             to_uri: str | None = None, headers: tuple[tuple[str, str], ...] = (),
             source: Endpoint = SOURCE,
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
