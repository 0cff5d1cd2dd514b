"""Algorithm 10 without script help: a call's load goes when its INVITE transaction ends
without a 2xx. The module runs on a stand-in router whose scheduler also drives tm's real
transaction layer (fake clock); the script's part is played by the API calls it would make."""
from __future__ import annotations

from pathlib import Path

from kamrouter.core.settings import Settings
from kamrouter.modules.dispatcher import DispatcherModule
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.script.message import RouteState, ScriptMessage
from kamrouter.tm import TmParams, Transaction, TransactionLayer
from support.doubles import StandInRouter

from .bench import make_msg

LIST = "1 sip:127.0.0.1:5071 0 0 duid=a\n1 sip:127.0.0.1:5072 0 0 duid=b\n"
CALL_LOAD = 10


class World:
    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "dispatcher.list").write_text(LIST)
        self.router = StandInRouter(Settings(base_dir=tmp_path))
        module = DispatcherModule(self.router, DispatcherConfig(list_file="dispatcher.list"))
        self.api = module.api()
        self.dispatcher = module.dispatcher
        self.tm = TransactionLayer(TmParams(), self.router.scheduler, lambda *sent: None,
                                   self.router, self.router.stats)  # type: ignore[arg-type]

    def invite(self, call_id: str, branch: str = "z9hG4bKtest") -> tuple[ScriptMessage,
                                                                          Transaction]:
        """An INVITE the script balanced with algorithm 10, and its server transaction
        holding the script's vars (as the proxy's transaction_for does)."""
        msg = make_msg(call_id=call_id, branch=branch)
        assert self.api.select_dst(msg, 1, CALL_LOAD)
        txn = self.tm.create(msg.sip, msg.source, None)  # type: ignore[arg-type]
        txn.context = RouteState(msg.vars, msg.flags)
        return msg, txn

    def load(self) -> int:
        return sum(d.health.load for d in self.dispatcher.list.destinations())

    def until_transactions_end(self) -> None:
        clock = self.router.clock
        while (deadline := self.router.scheduler.next_deadline()) is not None:
            clock.now = deadline
            self.router.scheduler.fire_due(clock.now)


def test_an_invite_ending_without_a_2xx_frees_its_load(tmp_path: Path) -> None:
    world = World(tmp_path)
    _, refused = world.invite("refused")
    _, answered = world.invite("answered", branch="z9hG4bK2")
    _, dropped = world.invite("dropped", branch="z9hG4bK3")
    unset, gave_up = world.invite("unset", branch="z9hG4bK4")
    assert world.load() == 4
    refused.reply_local(486)
    answered.reply_local(200)
    dropped.terminate()                       # never answered: the script dropped it
    assert world.api.load_unset(unset)        # the Kamailio way, in a failure route
    gave_up.reply_local(503)
    world.until_transactions_end()
    assert world.load() == 1 and len(world.dispatcher.calls) == 1   # only the answered call
    assert world.api.load_update(make_msg("BYE", call_id="answered"))
    assert world.load() == 0


def test_a_newer_invite_of_the_call_keeps_its_load(tmp_path: Path) -> None:
    world = World(tmp_path)
    _, challenged = world.invite("auth")
    challenged.reply_local(407)
    _, retried = world.invite("auth", branch="z9hG4bK2")   # same call, with credentials
    world.until_transactions_end()                         # the 407 transaction is gone
    assert world.load() == 1
    retried.reply_local(200)
    world.until_transactions_end()
    assert world.load() == 1
