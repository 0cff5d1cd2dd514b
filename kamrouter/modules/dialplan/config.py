"""The ``[dialplan]`` config section."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DialplanConfig:
    """Rules come from ``rules_file`` (reloadable) and/or ``rules`` written inline."""

    #: Kamailio's dialplan table as a .csv or .toml file (see kamrouter/modules/dialplan/files.py),
    #: relative to the config file; read at start and by dialplan.reload.
    rules_file: str = ""
    #: Rules in the config itself: ``[[dialplan.rules]]`` with the table's columns.
    rules: list[dict[str, Any]] = field(default_factory=list)
    #: ``msg.vars`` key where dp_translate/dp_match/dp_replace store the rule's attrs
    #: (Kamailio's attrs_pvar); empty: not stored.
    attrs_var: str = "dp_attrs"
    #: Seconds between two dialplan.reload calls (Kamailio's reload_delta); 0: no limit.
    reload_delta: int = 5
    #: Longest input translated and longest output produced, in characters (Kamailio's
    #: output buffer holds 127); longer inputs match no rule. Bounds regex work per call.
    max_length: int = 127

    def validate(self) -> list[str]:
        problems = []
        if self.rules_file and not self.rules_file.endswith((".csv", ".toml")):
            problems.append(f"rules_file: {self.rules_file!r} must end in .csv or .toml")
        if self.reload_delta < 0:
            problems.append(f"reload_delta: must be >= 0 seconds, got {self.reload_delta}")
        if not 1 <= self.max_length <= 4096:
            problems.append(f"max_length: must be between 1 and 4096, got {self.max_length}")
        return problems
