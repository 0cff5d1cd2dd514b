"""nathelper: detecting UAs behind NAT and fixing their registrations and contacts
(Kamailio's nathelper; keepalives are not implemented yet)."""
from __future__ import annotations

from kamrouter.modules.base import Module
from kamrouter.modules.nathelper.api import NathelperApi


class NathelperModule(Module):
    name = "nathelper"

    def api(self) -> NathelperApi:
        return NathelperApi()


__all__ = ["NathelperModule"]
