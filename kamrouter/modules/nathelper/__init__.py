"""nathelper: UAs behind NAT (Kamailio's nathelper): ``nat_uac_test``,
``fix_nated_register``, ``fix_nated_contact`` (``api``), and keepalive requests to NATed
bindings from the scheduler (``keepalive``; ``[nathelper] natping_interval``)."""
from __future__ import annotations

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.nathelper.api import NathelperApi
from kamrouter.modules.nathelper.config import NathelperConfig
from kamrouter.modules.nathelper.keepalive import Keepalive


class NathelperModule(Module):
    name = "nathelper"
    Config = NathelperConfig

    def __init__(self, router: RouterServices, config: NathelperConfig) -> None:
        super().__init__(router, config)
        settings = router.settings
        if config.natping_interval and "usrloc" not in (*settings.modules,
                                                        *settings.core.load_modules):
            raise ConfigError(["nathelper.natping_interval: keepalives need the usrloc "
                               "module (add a [usrloc] section)"])
        self.keepalive = Keepalive(router, config,
                                   lambda: router.module("usrloc"))  # type: ignore[arg-type,return-value]

    def api(self) -> NathelperApi:
        return NathelperApi()

    async def start(self, nursery: trio.Nursery) -> None:
        self.keepalive.start()

    async def stop(self) -> None:
        self.keepalive.stop()


__all__ = ["NathelperModule"]
