"""The import layering of ``/work/shared/design.md``: a package imports only packages of a lower
layer (or its own). Imports under ``if TYPE_CHECKING:`` are annotations only (no run-time
dependency, no import cycle) and are not counted."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Lowest first. Top-level modules of kamrouter (net, timers, stats, config) and kamcommon
#: are the base every layer may use; ``kamrouter/default`` is a routing script.
LAYERS = ["base", "sip", "dns", "tm", "transport", "script", "pipeline", "rpc", "modules", "core"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}

#: Violations still to remove, each with the change that removes it.
KNOWN: set[tuple[str, str]] = set()


def layer(module: str) -> str:
    """The layer of a dotted module name ("kamcli" and "kamcommon" are outside kamrouter)."""
    parts = module.split(".")
    if parts[0] == "kamcommon":
        return "base"
    if parts[0] != "kamrouter":
        return parts[0]
    if len(parts) > 1 and parts[1] in ("default", "__main__"):
        return "script" if parts[1] == "default" else "core"
    if len(parts) == 1 or parts[1] not in RANK:
        return "base"
    return parts[1]


def imports(path: Path) -> list[str]:
    """Modules ``path`` imports at run time (anywhere in the file, not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations(package: str) -> set[tuple[str, str]]:
    bad = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        importer = module_name(path)
        for imported in imports(path):
            if imported.split(".")[0] not in ("kamrouter", "kamcli", "kamcommon"):
                continue
            mine, theirs = layer(importer), layer(imported)
            if package == "kamcli":
                allowed = theirs in ("kamcli", "base") and not imported.startswith("kamrouter")
            elif package == "kamcommon":
                allowed = imported.startswith("kamcommon")
            else:
                allowed = theirs in RANK and RANK[theirs] <= RANK[mine]
            if not allowed:
                bad.add((importer, imported))
    return bad


def test_kamrouter_layers_import_only_downwards() -> None:
    assert violations("kamrouter") - KNOWN == set()


def test_kamcli_and_kamcommon_import_nothing_of_the_router() -> None:
    assert violations("kamcli") == set()
    assert violations("kamcommon") == set()


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\nimport kamrouter.core.router\n"
                    "if TYPE_CHECKING:\n    from kamrouter.core.proxy import Proxy\n")
    assert imports(path) == ["typing", "kamrouter.core.router"]
    assert layer("kamrouter.core.router") == "core" and layer("kamrouter.net") == "base"
    assert RANK[layer("kamrouter.core.router")] > RANK[layer("kamrouter.sip.message")]


def test_the_sans_io_packages_import_no_trio_and_no_socket() -> None:
    io = {"trio", "socket", "asyncio", "selectors"}
    for package in ("sip", "tm", "pipeline"):
        for path in sorted((ROOT / "kamrouter" / package).rglob("*.py")):
            used = {name.split(".")[0] for name in imports(path)} & io
            assert not used, f"{module_name(path)} imports {used}"
