"""The registrar module: save()/lookup() against the usrloc module's tables, its stats."""
from __future__ import annotations

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.registrar.api import RegistrarApi
from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.usrloc import UsrlocModule


class RegistrarModule(Module):
    name = "registrar"
    Config = RegistrarConfig

    def __init__(self, router: RouterServices, config: RegistrarConfig) -> None:
        super().__init__(router, config)
        stats = router.stats
        self.accepted = stats.counter("registrar", "accepted_regs")
        self.rejected = stats.counter("registrar", "rejected_regs")
        stats.gauge("registrar", "max_expires", lambda: config.max_expires)
        stats.gauge("registrar", "max_contacts", lambda: config.max_contacts)
        stats.gauge("registrar", "default_expire", lambda: config.default_expires)
        settings = router.settings
        if "usrloc" not in (*settings.modules, *settings.core.load_modules):
            raise ConfigError(["registrar: needs the usrloc module: add a [usrloc] section "
                               "(with its defaults bindings are kept in memory)"])
        self._usrloc: UsrlocModule | None = None
        self._api = RegistrarApi(self)

    @property
    def usrloc(self) -> UsrlocModule:
        """The location tables (the usrloc module; looked up on first use, so the config
        may name [registrar] before [usrloc])."""
        if self._usrloc is None:
            module = self.router.module("usrloc")
            assert isinstance(module, UsrlocModule)
            self._usrloc = module
        return self._usrloc

    def api(self) -> RegistrarApi:
        return self._api
