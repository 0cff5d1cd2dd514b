"""kamcli's built-in commands: ``name -> "module:attribute"`` of a Click command or group.

Modules are imported only when their command runs (or ``--help`` lists them), so each one
keeps heavy imports (rich, httpx, prompt_toolkit, yaml) inside its functions.
"""

BUILTIN_COMMANDS: dict[str, str] = {
    "address": "kamcli.commands.address:cli",
    "blocklist": "kamcli.commands.dns:blocklist",
    "completion": "kamcli.commands.completion:completion",
    "config": "kamcli.commands.config:cli",
    "dialplan": "kamcli.commands.dialplan:cli",
    "dispatcher": "kamcli.commands.dispatcher:cli",
    "dns": "kamcli.commands.dns:cli",
    "htable": "kamcli.commands.htable:cli",
    "moni": "kamcli.commands.moni:moni",
    "mtree": "kamcli.commands.mtree:cli",
    "pike": "kamcli.commands.pike:cli",
    "plugins": "kamcli.commands.plugins:plugins",
    "ps": "kamcli.commands.core:ps",
    "rpc": "kamcli.commands.rpc:rpc",
    "rpchelp": "kamcli.commands.rpc:rpchelp",
    "rpcmethods": "kamcli.commands.rpc:rpcmethods",
    "shell": "kamcli.commands.shell:shell",
    "srv": "kamcli.commands.srv:cli",
    "stats": "kamcli.commands.stats:stats",
    "subscriber": "kamcli.commands.subscriber:cli",
    "tcp": "kamcli.commands.tcp:cli",
    "ul": "kamcli.commands.ul:cli",
    "tls": "kamcli.commands.tls:cli",
    "uptime": "kamcli.commands.core:uptime",
    "version": "kamcli.commands.core:version",
    "ws": "kamcli.commands.ws:cli",
}

#: Other names of built-in commands (Kamailio kamcli habits), not listed in --help.
ALIASES: dict[str, str] = {"jsonrpc": "rpc", "sht": "htable", "permissions": "address"}
