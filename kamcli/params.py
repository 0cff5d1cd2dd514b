"""Typing RPC params given on the command line, by the reference kamcli's rule.

Each word is sent as a string, as the reference kamcli does (``1000`` is the string "1000").
``i:N`` sends the integer N and ``s:TEXT`` the string TEXT (``s:i:x`` is the string "i:x").
With ``as_json`` (``kamcli rpc --json``) the other words are read as JSON, so ``42`` is an
integer, ``1.5`` a number, ``true``/``null`` what they say, ``[1,2]`` an array and
``{"a":1}`` an object; a word that is not JSON stays a string. With ``named`` the words are
``NAME=VALUE`` pairs sent as a JSON object, each VALUE typed by the same rules.
"""
from __future__ import annotations

import json
from typing import Any

import click


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # NaN/Infinity: keep them strings


def parse_param(text: str, position: int, as_json: bool = False) -> Any:
    if text.startswith("s:"):
        return text[2:]
    if text.startswith("i:"):
        try:
            return int(text[2:])
        except ValueError:
            raise click.BadParameter(f"param {position} {text!r}: 'i:' must be followed by an "
                                     "integer") from None
    if not as_json:
        return text
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def parse_params(words: tuple[str, ...], named: bool,
                 as_json: bool = False) -> list[Any] | dict[str, Any]:
    if not named:
        return [parse_param(word, i, as_json) for i, word in enumerate(words, start=1)]
    params: dict[str, Any] = {}
    for i, word in enumerate(words, start=1):
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"param {i} {word!r}: with --named, write NAME=VALUE")
        params[name] = parse_param(value, i, as_json)
    return params
