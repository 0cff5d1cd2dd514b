"""Config sections of usrloc, registrar, auth, nathelper: defaults valid, problems named by
key; the TOML subscriber file."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.config import build_section
from kamrouter.modules.auth.config import AuthConfig
from kamrouter.modules.auth.subscribers import Subscriber, TomlSubscribers
from kamrouter.modules.nathelper.config import NathelperConfig
from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.usrloc.config import UsrlocConfig


def problems(cls: type, raw: dict) -> list[str]:
    found: list[str] = []
    build_section(cls, raw, cls.__name__, found)
    return found


@pytest.mark.parametrize("cls", [UsrlocConfig, RegistrarConfig, AuthConfig, NathelperConfig])
def test_defaults_are_valid(cls: type) -> None:
    assert problems(cls, {}) == []


def test_problems_name_their_key() -> None:
    assert any("matching_mode" in p for p in problems(UsrlocConfig, {"matching_mode": 5}))
    assert any("max_expires" in p for p in problems(RegistrarConfig, {"max_expires": 10}))
    assert any("default_q" in p for p in problems(RegistrarConfig, {"default_q": 2000}))
    assert any("algorithms" in p for p in problems(AuthConfig, {"algorithms": ["SHA-512"]}))
    assert any("qop" in p for p in problems(AuthConfig, {"qop": "auth-conf"}))
    assert any("sipping_from" in p for p in problems(NathelperConfig, {"sipping_from": "x"}))


def test_toml_subscribers(tmp_path: Path) -> None:
    alice = Subscriber.with_password("alice", "example.com", "pw")
    path = tmp_path / "subscribers.toml"
    path.write_text(f'["alice@example.com"]\nha1 = "{alice.ha1}"\n'
                    f'ha1_sha256 = "{alice.ha1_sha256}"\n')
    table = TomlSubscribers(path)
    assert table.find("alice", "example.com").ha1_for("SHA-256") == alice.ha1_sha256
    assert table.find("alice", None) is not None and table.find("bob", "example.com") is None
    path.write_text('["alice"]\nha1 = "x"\n')
    with pytest.raises(ValueError, match="user@domain"):
        TomlSubscribers(path)
