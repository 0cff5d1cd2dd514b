"""Parsing JSON from the network with bounds on nesting depth and integer length.

``json.loads`` alone is not safe for hostile input: an array nested some thousands deep
raises ``RecursionError`` and an integer of more than 4,300 digits raises a bare
``ValueError`` (Python's int-from-string limit), neither of which callers expect from a
parser. :func:`loads` refuses both up front with :class:`JsonLimitError`, which says which
limit was hit, and is otherwise ``json.loads``. Every JSON that arrives from outside (the RPC
transports, evapi, routing-API and http_client answers) goes through it.

The checks cost two C-speed passes (string contents are skipped, so digits or brackets
inside strings do not count); documents that cannot reach a limit (fewer opening brackets
than the depth limit, no run of digits longer than the digit limit) skip the second one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

#: Default deepest nesting of arrays and objects.
MAX_DEPTH = 64
#: Default longest integer, in digits (a 128-bit integer has 39).
MAX_INT_DIGITS = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


@dataclass(frozen=True, slots=True)
class JsonLimits:
    max_depth: int = MAX_DEPTH
    max_int_digits: int = MAX_INT_DIGITS
    #: How the limits are named in error messages (``rpc.`` gives ``rpc.max_json_depth``).
    key_prefix: str = ""


DEFAULT_LIMITS = JsonLimits()


class JsonLimitError(ValueError):
    """The document exceeds a limit; ``limit`` is the config key, e.g. ``rpc.max_json_depth``."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{message} (limit {limit})")
        self.limit = limit


def loads(data: bytes | bytearray | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """``json.loads`` that raises :class:`JsonLimitError` (a ValueError) past ``limits``.

    Other errors are those of ``json.loads``: ``json.JSONDecodeError`` and
    ``UnicodeDecodeError``, both ValueErrors.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    outside_strings = None
    if raw.count(b"[") + raw.count(b"{") > limits.max_depth:
        outside_strings = _STRING.sub(b"", raw)
        brackets = outside_strings.translate(None, _NOT_BRACKETS)
        if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limits.max_depth:
            raise JsonLimitError(f"{limits.key_prefix}max_json_depth",
                                 f"JSON nested deeper than {limits.max_depth} levels")
    long_run = b"0" * (limits.max_int_digits + 1)
    if long_run not in raw.translate(_DIGITS_AS_ZERO):
        return json.loads(raw)
    if outside_strings is None:
        outside_strings = _STRING.sub(b"", raw)
    if long_run not in outside_strings.translate(_DIGITS_AS_ZERO):
        return json.loads(raw)
    return json.loads(raw, parse_int=lambda text: _integer(text, limits))


def _integer(text: str, limits: JsonLimits) -> int:
    if len(text.lstrip("-")) > limits.max_int_digits:
        raise JsonLimitError(f"{limits.key_prefix}max_json_digits",
                             f"JSON integer longer than {limits.max_int_digits} digits")
    return int(text)
