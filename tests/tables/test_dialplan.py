"""dialplan: Kamailio's matching, priorities, match_len, substitution and attrs (the cases
were checked against Kamailio 5.6.3's dialplan.translate), rule files, the script API, the
RPC shapes, and reloads that keep the rules in use when the file is bad."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from dispatcher.bench import make_msg

from kamrouter.config import ConfigError
from kamrouter.modules.dialplan.files import csv_rules, read_rules
from kamrouter.modules.dialplan.patterns import (
    PatternError, backtracking_risk, compile_fnmatch, compile_regex,
)
from kamrouter.modules.dialplan.rules import (
    COLUMNS, Dialplans, RuleError, Translation, build_rule, translate,
)

from .harness import dialplan_on

#: The rules Kamailio 5.6.3 was run with (sqlite dialplan table), as CSV lines.
KAMAILIO_RULES = r"""dpid,pr,match_op,match_exp,match_len,subst_exp,repl_exp,attrs
1,1,1,^0[1-9][0-9]+$,0,^0([1-9][0-9]+)$,0049\1,de
1,2,1,^00[1-9][0-9]+$,0,^00(.*)$,+\1,intl
1,0,0,112,0,,,emergency
1,3,2,9*,0,^9(.*)$,\1,local
2,1,1,^.*$,4,,1000,four
2,2,1,^.*$,0,,2000,any
3,1,1,[0-9],0,[0-9],X,part
3,2,2,[!a]b*,0,,,fn
"""


def plans(text: str = KAMAILIO_RULES) -> Dialplans:
    return Dialplans(csv_rules(text.splitlines(), "rules.csv"))


@pytest.mark.parametrize(("dpid", "value", "expected"), [
    (1, "0301234", Translation("0049301234", "de")),      # regex + back-reference
    (1, "00301234", Translation("+301234", "intl")),       # pr 1 fails to match, pr 2 wins
    (1, "112", Translation("", "emergency")),              # exact, no replacement: empty
    (1, "9555", Translation("555", "local")),              # fnmatch, then subst
    (1, "abc", None),
    (2, "abcd", Translation("1000", "four")),              # match_len 4 before any length
    (2, "abcde", Translation("2000", "any")),
    (3, "ab12", Translation("X", "part")),                 # output = repl, not an in-place edit
    (3, "bbb", Translation("", "fn")),                     # fnmatch class with negation
    (3, "abb", None),
])
def test_translations_match_kamailio(dpid: int, value: str, expected: Translation | None) -> None:
    plan = plans().get(dpid)
    assert plan is not None
    assert translate(plan, value, 127) == expected


def test_priority_and_file_order() -> None:
    rules = plans("1,5,1,^1,0,,late,b\n1,1,1,^1,0,,early,a\n1,1,1,^12,0,,same-pr-later,c\n")
    plan = rules.get(1)
    assert translate(plan, "123", 127) == Translation("early", "a")
    assert [rule.attrs for rule in plan.rules] == ["a", "c", "b"]


def test_a_rule_that_matches_but_whose_subst_does_not_fails_the_translation() -> None:
    rules = plans("1,1,1,^4,0,^49(.*)$,\\1,first\n1,2,1,^4,0,,fallback,second\n")
    assert translate(rules.get(1), "4711", 127) is None  # Kamailio does not try rule 2


def test_regex_is_unanchored_and_case_sensitive_exact_is_whole() -> None:
    rules = plans("1,1,1,bc,0,,x,regex\n2,1,0,abc,0,,y,exact\n")
    assert translate(rules.get(1), "abcd", 127) == Translation("x", "regex")
    assert translate(rules.get(1), "ABCD", 127) is None
    assert translate(rules.get(2), "abcd", 127) is None
    assert translate(rules.get(2), "abc", 127) == Translation("y", "exact")


def test_replacement_escapes_and_uri() -> None:
    rule = build_rule({"dpid": 1, "match_op": 1, "match_exp": "^(.)(.)$", "subst_exp": "^(.)(.)$",
                       "repl_exp": r"\2\1\\\0-\u"}, "r")
    plan = Dialplans([rule]).get(1)
    assert translate(plan, "ab", 127, lambda: "sip:x@y") == Translation("ba\\ab-sip:x@y", "")


def test_bounds_on_input_and_output() -> None:
    rules = plans("1,1,1,.,0,^(.*)$,\\1\\1,x\n")
    assert translate(rules.get(1), "a" * 10, 10) is None    # output 20 > 10
    assert translate(rules.get(1), "a" * 11, 100) is not None
    assert translate(rules.get(1), "a" * 101, 100) is None  # input too long
    assert translate(rules.get(1), "", 100) is None


@pytest.mark.parametrize(("row", "message"), [
    ({"match_op": 1, "match_exp": "^(0"}, "bad regular expression"),
    ({"match_op": 1, "match_exp": r"(a+)+\1"}, "RE2, which runs such patterns safely"),
    ({"match_op": 1, "match_exp": "(a|aa)*(?=b)"}, "repeats alternatives without bound"),
    ({"match_op": 3, "match_exp": "x"}, "match_op 3"),
    ({"match_op": 1, "match_exp": "x", "subst_exp": "(x)", "repl_exp": r"\2"},
     "refers to group \\2"),
    ({"match_op": 1, "match_exp": "x", "repl_exp": r"\q"}, "unknown escape"),
    ({"match_op": 0, "match_exp": ""}, "match_exp is empty"),
    ({"match_op": "one", "match_exp": "x"}, "match_op must be an integer"),
    ({"match_op": 0, "match_exp": "x", "colour": "red"}, "unknown column 'colour'"),
])
def test_bad_rules_are_refused_naming_the_rule(row: dict, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        build_rule({"dpid": 1, **row}, "rules.csv:7")
    assert str(caught.value).startswith("rules.csv:7: ") and message in str(caught.value)


def test_plain_regexes_run_on_re_risky_ones_on_re2() -> None:
    for pattern in (r"^\+[1-9][0-9]{6,14}$", r"^(00|\+)?49(.*)$", r"^(?:[0-9]{3}-)*x$",
                    r"(ab){2}", r"^[0-9]+$", r"(a|b)*c", r"(a)\1"):
        assert backtracking_risk(pattern) is None, pattern
        assert isinstance(compile_regex(pattern), re.Pattern)
    for pattern, risk in ((r"(a+)+$", "nests a repeat"), (r"^(\d{1,3})*$", "nests a repeat"),
                          (r"(a|aa)*$", "alternatives"), (r".*.*.*.*=", "4 unbounded")):
        assert risk in backtracking_risk(pattern), pattern
        compiled = compile_regex(pattern)
        assert not isinstance(compiled, re.Pattern)
        compiled.search("a" * 126 + "!")  # linear on RE2; re would not come back for hours


def test_a_risky_regex_still_translates_with_its_groups() -> None:
    rule = build_rule({"dpid": 1, "match_op": 1, "match_exp": r"^(0+)+[1-9]",
                       "subst_exp": r"^(0|00)*([1-9].*)$", "repl_exp": r"+\2"}, "r")
    plan = Dialplans([rule]).get(1)
    assert translate(plan, "000491234", 127) == Translation("+491234", "")
    assert translate(plan, "0" * 120 + "x", 127) is None


def test_fnmatch_does_not_backtrack_exponentially() -> None:
    matches = compile_fnmatch("*a*a*a*a*a*a*a*a*a*b")
    assert not matches("a" * 120)  # a translated regex would take ages here
    assert matches("xaaaaaaaaaab")
    assert compile_fnmatch(r"\*1?[0-3]")("*123") and not compile_fnmatch(r"\*1")("x1")
    assert compile_fnmatch("[a-c]x")("bx") and not compile_fnmatch("[a-c]x")("dx")
    assert compile_fnmatch("[x")("[x")  # an unclosed bracket is a literal
    with pytest.raises(PatternError):
        compile_fnmatch("*" * 2000)


def test_csv_and_toml_files_and_their_errors(tmp_path: Path) -> None:
    csv_file = tmp_path / "dp.csv"
    csv_file.write_text('# comment\n1,1,1,"^(1|2),x$",0,,y,commas\n')
    assert [rule.match_exp for rule in read_rules(csv_file)] == ["^(1|2),x$"]
    csv_file.write_text("dpid,pr,match_op,match_exp\n1,1,0,a\n\n1,2,1,(b\n")
    with pytest.raises(RuleError, match=r"dp\.csv:4: .*bad regular expression"):
        read_rules(csv_file)
    toml_file = tmp_path / "dp.toml"
    toml_file.write_text("[[rules]]\ndpid = 1\nmatch_op = 1\nmatch_exp = '^0(.*)$'\n"
                         "subst_exp = '^0(.*)$'\nrepl_exp = '+49\\1'\n\n"
                         "[[rules]]\ndpid = 1\nmatch_op = 9\nmatch_exp = 'x'\n")
    with pytest.raises(RuleError, match=r"dp\.toml:8: match_op 9"):
        read_rules(toml_file)
    with pytest.raises(RuleError, match="cannot read"):
        read_rules(tmp_path / "missing.csv")


def test_a_bad_rules_file_stops_the_router_at_start(tmp_path: Path) -> None:
    (tmp_path / "dp.csv").write_text("1,1,1,(a*)*\\1,0,,,x\n")
    with pytest.raises(ConfigError, match=r"dp\.csv:1: .*nests a repeat"):
        dialplan_on(tmp_path, rules_file="dp.csv")


def test_script_api(tmp_path: Path) -> None:
    (tmp_path / "dp.csv").write_text(KAMAILIO_RULES)
    dp = dialplan_on(tmp_path, rules_file="dp.csv",
                     rules=[{"dpid": 9, "match_op": 0, "match_exp": "alice",
                             "repl_exp": "bob", "attrs": "renamed"}])
    api = dp.api
    msg = make_msg(ruri="sip:0301234@example.net;transport=udp")
    assert api.dp_translate(msg, 1)
    assert msg.ruri == "sip:0049301234@example.net;transport=udp"
    assert msg.vars["dp_attrs"] == "de"
    assert api.dp_translate(msg, 1, "$rU", "$rU") and msg.ruri_user == "+49301234"
    assert not api.dp_translate(msg, 1)                # +49... matches no rule
    assert not api.dp_translate(msg, 42)               # no such dialplan (Kamailio's -2)
    assert not api.has(42) and api.has(9)
    assert api.dp_translate(msg, 9, "$fU", "$var(callee)")  # inline rule, into a variable
    assert msg.vars["callee"] == "bob" and msg.vars["dp_attrs"] == "renamed"
    assert api.dp_replace(msg, 1, "9555", "$avp(local)") and msg.vars["local"] == "555"
    assert api.dp_match(msg, 1, "112") and msg.vars["dp_attrs"] == "emergency"
    tel = make_msg(ruri="tel:0301234;phone-context=example.net")
    assert api.dp_translate(tel, 1) and tel.ruri == "tel:0049301234;phone-context=example.net"
    assert not api.dp_translate(msg, 1, "$nosuch")     # logged and counted, never raised
    assert dp.stat("dialplan", "errors") == 1
    assert dp.stat("dialplan", "rules") == 9
    assert dp.stat("dialplan", "translated") >= 5


async def test_rpc_shapes_as_kamailio(tmp_path: Path) -> None:
    (tmp_path / "dp.csv").write_text(KAMAILIO_RULES)
    dp = dialplan_on(tmp_path, rules_file="dp.csv")
    assert await dp.rpc("dialplan.translate", 1, "0301234") == {"Output": "0049301234",
                                                               "Attributes": "de"}
    assert await dp.rpc("dialplan.translate", 1, 112) == {"Output": "", "Attributes": "emergency"}
    assert await dp.rpc("dialplan.translate", 1, "abc") == ("error", 500, "No translation")
    assert await dp.rpc("dialplan.translate", 9, "1") == ("error", 500, "Dialplan ID not matched")
    assert await dp.rpc("dialplan.translate", 1, "") == ("error", 500, "Empty input parameter")
    assert await dp.rpc("dialplan.dump", 2) == {"DPID": 2, "ENTRIES": [
        {"ENTRY": {"PRIO": 1, "MATCHOP": 1, "MATCHEXP": "^.*$", "MATCHLEN": 4,
                   "SUBSTEXP": None, "REPLEXP": "1000", "ATTRS": "four"}},
        {"ENTRY": {"PRIO": 2, "MATCHOP": 1, "MATCHEXP": "^.*$", "MATCHLEN": 0,
                   "SUBSTEXP": None, "REPLEXP": "2000", "ATTRS": "any"}}]}
    assert [e["ENTRY"]["PRIO"] for e in (await dp.rpc("dialplan.dump", 1))["ENTRIES"]] \
        == [0, 1, 2, 3]
    assert await dp.rpc("dialplan.dump", 7) == ("error", 500, "Dialplan ID not matched")
    assert await dp.rpc("dialplan.list") == [{"DPID": 1, "RULES": 4}, {"DPID": 2, "RULES": 2},
                                            {"DPID": 3, "RULES": 2}]
    assert await dp.rpc("dialplan.translate", 1) == ("error", -32602, "Invalid params")


async def test_reload_keeps_the_rules_in_use_when_the_file_is_bad(tmp_path: Path) -> None:
    rules = tmp_path / "dp.csv"
    rules.write_text(KAMAILIO_RULES)
    dp = dialplan_on(tmp_path, rules_file="dp.csv", reload_delta=0)
    rules.write_text("1,1,1,^7,0,,seven,new\n1,1,1,[,0,,,broken\n")
    answer = await dp.rpc("dialplan.reload")
    assert answer[:2] == ("error", 500) and "dp.csv:2" in answer[2]
    assert (await dp.rpc("dialplan.translate", 1, "0301234"))["Output"] == "0049301234"
    assert dp.stat("dialplan", "reload_failures") == 1
    rules.write_text("1,1,1,^7,0,,seven,new\n")
    assert await dp.rpc("dialplan.reload") == {}
    assert await dp.rpc("dialplan.translate", 1, "7") == {"Output": "seven", "Attributes": "new"}
    assert await dp.rpc("dialplan.dump", 2) == ("error", 500, "Dialplan ID not matched")


async def test_reload_is_rate_limited_like_kamailio(tmp_path: Path) -> None:
    (tmp_path / "dp.csv").write_text(KAMAILIO_RULES)
    dp = dialplan_on(tmp_path, rules_file="dp.csv")  # reload_delta 5 s, Kamailio's default
    assert await dp.rpc("dialplan.reload") == {}
    assert await dp.rpc("dialplan.reload") == ("error", 500, "ongoing reload")
    inline_only = dialplan_on(tmp_path, rules=[{"dpid": 1, "match_op": 0, "match_exp": "x"}])
    answer = await inline_only.rpc("dialplan.reload")
    assert answer[:2] == ("error", 500) and "no rules_file" in answer[2]


def test_columns_are_kamailios() -> None:
    assert COLUMNS == ("dpid", "pr", "match_op", "match_exp", "match_len", "subst_exp",
                       "repl_exp", "attrs")


def test_translated_uris_are_checked_before_they_are_set(tmp_path: Path) -> None:
    dp = dialplan_on(tmp_path, rules=[
        {"dpid": 1, "match_op": 0, "match_exp": "x", "repl_exp": "not a uri", "attrs": "bad"},
        {"dpid": 2, "match_op": 0, "match_exp": "bob", "repl_exp": "sip:carol@example.org"}])
    msg = make_msg(ruri="sip:x@example.net")
    assert not dp.api.dp_translate(msg, 1, "$rU", "$ru")
    assert not dp.api.dp_translate(msg, 1, "$rU", "$rU")  # "not a uri" is no user part
    assert msg.ruri == "sip:x@example.net"
    bob = make_msg()
    assert dp.api.dp_translate(bob, "2", "$rU", "$du") and bob.dst_uri == "sip:carol@example.org"
