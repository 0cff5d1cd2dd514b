"""permissions: IP address groups (Kamailio's address table) for trusted sources and the
relay allow list.

Files: ``address`` (entries, matching, the address file format), ``config`` (the
[permissions] section), ``rpc`` (permissions.* methods), ``module`` (wiring and the script
API: allow_source_address, allow_address, allow_trusted, allow_destination, ...).
"""
from kamrouter.modules.permissions.module import PermissionsModule

__all__ = ["PermissionsModule"]
