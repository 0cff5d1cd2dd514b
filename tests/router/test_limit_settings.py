"""The [core] header limits and the [tcp] connection limits: defaults and ranges."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.config import ConfigError
from kamrouter.core.settings import build_settings


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_settings(raw, set(), Path.cwd())
    return info.value.problems


def test_defaults_are_in_range() -> None:
    settings = build_settings({}, set(), Path.cwd())
    assert (settings.core.max_headers, settings.core.max_vias) == (256, 70)
    assert (settings.tcp.max_connections_per_ip, settings.tcp.msg_read_timeout) == (256, 20.0)


def test_every_limit_out_of_range_is_named_by_key() -> None:
    found = problems({"core": {"max_headers": 8, "max_vias": 0, "max_routes": 5000,
                               "max_record_routes": -1},
                      "tcp": {"max_connections_per_ip": 0, "msg_read_timeout": 0}})
    for key in ("max_headers", "max_vias", "max_routes", "max_record_routes",
                "max_connections_per_ip", "msg_read_timeout"):
        assert any(key in problem for problem in found), (key, found)
