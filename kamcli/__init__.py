"""kamcli: the operator's command-line tool for kamrouter (and Kamailio's jsonrpcs)."""

__version__ = "0.1.0"
