"""kamcli: the operator's command-line tool for kamrouter (and Kamailio's jsonrpcs).

- :mod:`.main`       the ``kamcli`` group and its global options
- :mod:`.loader`     lazy loading of built-in commands and ``kamcli.commands`` plugins
- :mod:`.options`    command line > ``KAMCLI_*`` environment > config file > defaults
- :mod:`.config`     the TOML config file
- :mod:`.context`    what commands (and plugins) use: ``ctx.rpc``, ``ctx.output``, ``ctx.info``
- :mod:`.transport`  stream / datagram / FIFO / HTTP clients; :mod:`.client` JSON-RPC on top
- :mod:`.output`     table / json / yaml / raw rendering; :mod:`.live` refreshing views
- :mod:`.commands`   the built-in commands
- :mod:`.errors`     exit codes: 0 ok, 1 router error, 2 usage, 3 unreachable, 4 broken command
"""

__version__ = "0.1.0"
