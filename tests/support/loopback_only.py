"""Every socket of the test process may reach loopback addresses only.

Tests build messages naming private and documentation addresses (10.0.0.2, 192.168.1.20,
203.0.113.7...); a connect or send to one of them from this process fails the test instead
of leaving the machine. Routers under test run as subprocesses with a routing script or
config whose next hops are loopback sinks; this guards the test process itself.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest


def _check(address: Any) -> None:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return
    host = str(address[0])
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return  # a name ("localhost"): resolved by the kernel to what /etc/hosts says
    if not (ip.is_loopback or ip.is_unspecified):
        raise AssertionError(f"a test tried to reach {host}: tests send to loopback only")


def _guard(name: str, address_of: Callable[[tuple[Any, ...]], Any]) -> None:
    original = getattr(socket.socket, name)

    def method(self: socket.socket, *args: Any) -> Any:
        _check(address_of(args))
        return original(self, *args)

    setattr(socket.socket, name, method)


def install() -> None:
    """Guard this process's sockets (benchmarks call it too)."""
    _guard("connect", lambda args: args[0])
    _guard("connect_ex", lambda args: args[0])
    _guard("sendto", lambda args: args[-1])  # (data, address) or (data, flags, address)
    _guard("sendmsg", lambda args: args[3] if len(args) > 3 else None)


def pytest_configure(config: pytest.Config) -> None:
    install()
