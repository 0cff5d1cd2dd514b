import inspect

import pytest

from kamrouter.rpc.params import InvalidParams, bind, param_checks, usage


def method(table: str, expire: int, ratio: float = 1.0, flag: bool | None = None,
           *rest: str) -> None:
    """A method with every kind of parameter."""


SIG = inspect.signature(method)
CHECKS = param_checks(method, SIG)


def call(params):
    return bind("m.x", SIG, CHECKS, params)


def test_positional_and_named_binding():
    assert call(["t", 5]) == (["t", 5], {})
    assert call({"expire": 5, "table": "t"}) == (["t", 5], {})
    assert call(["t", 5, 2, True, "a", "b"]) == (["t", 5, 2, True, "a", "b"], {})


@pytest.mark.parametrize("params, message", [
    (["t"], "missing a required argument: 'expire'"),
    (["t", "5"], "parameter 'expire' must be an integer, got string '5'"),
    (["t", True], "parameter 'expire' must be an integer, got boolean True"),
    (["t", 1, "x"], "parameter 'ratio' must be a number, got string 'x'"),
    (["t", 1, 1.0, 3], "parameter 'flag' must be a boolean or null, got integer 3"),
    (["t", 1, 1.0, None, "ok", []], "parameter 'rest[1]' must be a string, got array"),
    ({"table": "t", "expire": 1, "nope": 2}, "unexpected keyword argument 'nope'"),
])
def test_errors_name_the_parameter(params, message):
    with pytest.raises(InvalidParams, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(params)


def test_error_shows_usage():
    with pytest.raises(InvalidParams, match=r"usage: m\.x\(table, expire, \[ratio\], \[flag\], "
                                            r"\[rest\.\.\.\]\)"):
        call([])


def test_integer_becomes_text_for_string_parameter():
    assert call([1234, 5]) == (["1234", 5], {})


def test_unannotated_and_unknown_annotations_are_not_checked():
    def loose(a, b: "SomethingUndefined" = None): ...  # noqa: F821
    assert bind("l", inspect.signature(loose), param_checks(loose, inspect.signature(loose)),
                [[1], {"x": 1}]) == ([[1], {"x": 1}], {})
    assert usage("l", inspect.signature(loose)) == "l(a, [b])"
