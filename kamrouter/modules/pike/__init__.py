"""pike: per-source request-rate limits with a ban list (Kamailio's pike, plus the ban list
its stock config keeps in an htable).

Files: ``table`` (the sans-IO counting and bans), ``module`` (config, script API
``pike.check_req(msg)``, pike.top/list/ban/unban RPC, pike: statistics).
"""
from kamrouter.modules.pike.module import PikeModule

__all__ = ["PikeModule"]
