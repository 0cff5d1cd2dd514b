"""The ``[[mtree]]`` config section: one array element per tree."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class TreeConfig:
    """One tree. Names follow Kamailio's ``mtree`` modparam (name, type, multi) and its
    module parameters (char_list, mt_ignore_duplicates / mt_allow_duplicates)."""

    name: str = ""
    #: 0: string values, 2: integer values (Kamailio's 1, dstid:weight pairs, is not offered).
    type: int = 0
    #: The tree's data: .csv (prefix,value lines) or .toml (prefix = value), relative to the
    #: config file; read at start and by mtree.reload.
    file: str = ""
    #: The file holds several trees (Kamailio's mtrees table): lines are tname,prefix,value
    #: and only this tree's lines are loaded.
    multi: bool = False
    #: Prefixes written in the config: ``items = { "49" = "de", "4930" = "berlin" }``.
    items: dict[str, Any] = field(default_factory=dict)
    #: The characters a prefix may hold.
    char_list: str = "0123456789"
    #: A prefix given twice: "error" refuses the data, "ignore" keeps the first value,
    #: "allow" keeps them all (mt_match mode 2 returns every one).
    duplicates: Literal["error", "ignore", "allow"] = "error"

    def validate(self) -> list[str]:
        problems = []
        if not self.name:
            problems.append("name: missing (every [[mtree]] needs a name)")
        elif not _NAME.fullmatch(self.name):
            problems.append(f"name: {self.name!r} may only contain letters, digits, '_', '.', '-'")
        if self.type not in (0, 2):
            problems.append(f"type: {self.type} must be 0 (string values) or 2 (integer values)")
        if self.file and not self.file.endswith((".csv", ".txt", ".toml")):
            problems.append(f"file: {self.file!r} must end in .csv, .txt or .toml")
        if self.multi and not self.file:
            problems.append("multi: needs a file (lines tname,prefix,value)")
        if not self.char_list or len(set(self.char_list)) != len(self.char_list):
            problems.append(f"char_list: {self.char_list!r} must list distinct characters")
        return problems
