"""The dialplan module: rules from ``[dialplan]`` (a file and/or inline), reloaded over RPC
without ever serving a half-loaded or broken set."""
from __future__ import annotations

import logging
import time

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices, config_path
from kamrouter.modules.dialplan.api import DialplanApi, DialplanStats
from kamrouter.modules.dialplan.config import DialplanConfig
from kamrouter.modules.dialplan.files import config_rules, read_rules
from kamrouter.modules.dialplan.rpc import DialplanRpc
from kamrouter.modules.dialplan.rules import Dialplans, Rule, RuleError
from kamrouter.rpc.registry import RpcError

log = logging.getLogger("kamrouter.dialplan")


class DialplanModule(Module):
    name = "dialplan"
    Config = DialplanConfig

    def __init__(self, router: RouterServices, config: DialplanConfig) -> None:
        super().__init__(router, config)
        self.path = config_path(router, config.rules_file) if config.rules_file else None
        try:
            self.inline: list[Rule] = config_rules(config.rules)
            self.plans = Dialplans(self.inline + self._file_rules())
        except RuleError as exc:
            raise ConfigError([f"dialplan: {exc}"]) from None
        self._last_reload = 0.0
        stats = router.stats
        self._api = DialplanApi(lambda: self.plans, config.max_length, config.attrs_var,
                                DialplanStats(stats.counter))
        self.reloads = stats.counter("dialplan", "reloads")
        self.reload_failures = stats.counter("dialplan", "reload_failures")
        stats.gauge("dialplan", "rules", lambda: self.plans.count)
        DialplanRpc(self._api, lambda: self.plans, self.reload).register(router.rpc)

    def api(self) -> DialplanApi:
        return self._api

    def _file_rules(self) -> list[Rule]:
        return read_rules(self.path) if self.path is not None else []

    async def reload(self) -> None:
        """Read the rules file again; on any error keep the rules in use and say why."""
        if self.path is None:
            raise RpcError(500, "Dialplan Reload Failed: no rules_file in [dialplan] (the "
                                "rules come from the config only)")
        now = time.monotonic()
        delta = self.config.reload_delta
        if delta and self._last_reload and now - self._last_reload < delta:
            raise RpcError(500, "ongoing reload")
        self._last_reload = now
        try:
            rules = await trio.to_thread.run_sync(self._file_rules)
        except RuleError as exc:
            self.reload_failures.value += 1
            log.error("dialplan reload failed, keeping %d rules: %s", self.plans.count, exc)
            raise RpcError(500, f"Dialplan Reload Failed: {exc}") from None
        self.plans = Dialplans(self.inline + rules)
        self.reloads.value += 1
        log.info("dialplan reloaded: %d rules in %d dialplans from %s", self.plans.count,
                 len(self.plans.plans), self.path)
