"""rtjson route documents: parsing, validation messages that name the field, route walking."""
from __future__ import annotations

import json

import pytest

from kamrouter.modules.rtjson import (
    NameAddrRewrite,
    RouteDocumentError,
    RouteWalk,
    parse_document,
)

FULL = {
    "version": "1.0",
    "routing": "serial",
    "tindex": 12, "tlabel": 34,   # correlation ids travel along and are ignored
    "routes": [
        {
            "uri": "sip:+4930123@gw1.example.net",
            "dst_uri": "sip:127.0.0.1:5071",
            "path": "<sip:127.0.0.1:5090;lr>",
            "socket": "udp:127.0.0.1:5060",
            "headers": {
                "from": {"display": "Front Desk", "uri": "sip:+4930999@example.com"},
                "to": {"display": ""},
                "extra": "X-Route-Id: r1\r\nX-Carrier: one\r\n",
            },
            "branch_flags": 4,
            "fr_timer": 2000,
            "fr_inv_timer": 20000,
        },
        {"uri": "sip:+4930123@gw2.example.net", "fr_timer": 3000},
    ],
}


def problems_of(doc: object) -> list[str]:
    with pytest.raises(RouteDocumentError) as info:
        parse_document(doc)  # type: ignore[arg-type]
    return info.value.problems


def test_full_document_parses_every_field() -> None:
    doc = parse_document(json.dumps(FULL))
    assert doc.version == "1.0" and doc.routing == "serial" and len(doc.routes) == 2
    first, second = doc.routes
    assert first.uri == "sip:+4930123@gw1.example.net"
    assert first.dst_uri == "sip:127.0.0.1:5071"
    assert first.path == "<sip:127.0.0.1:5090;lr>"
    assert first.socket == "udp:127.0.0.1:5060"
    assert first.from_ == NameAddrRewrite("Front Desk", "sip:+4930999@example.com")
    assert first.to == NameAddrRewrite("", None)
    assert first.extra_headers == (("X-Route-Id", "r1"), ("X-Carrier", "one"))
    assert (first.branch_flags, first.fr_timer, first.fr_inv_timer) == (4, 2000, 20000)
    assert second.dst_uri is None and second.fr_timer == 3000 and second.fr_inv_timer == 0


def test_bytes_and_minimal_route_are_accepted() -> None:
    doc = parse_document(b'{"routing":"parallel","routes":[{}]}')
    assert doc.routing == "parallel" and doc.routes[0].uri is None


def test_the_brief_example_message() -> None:
    doc = {"routing": "serial", "routes": [{"uri": "sip:a@h"}, {"fr_timer": "2s"}]}
    assert problems_of(doc) == ["routes[1].fr_timer: expected integer milliseconds, "
                                "got string '2s'"]


@pytest.mark.parametrize(("doc", "expected"), [
    ("{nope", "document: invalid JSON: Expecting property name enclosed in double quotes: "
              "line 1 column 2 (char 1)"),
    ("[1]", "document: expected a JSON object, got array [1]"),
    ({"routes": [{}]}, "routing: expected 'serial' or 'parallel', missing"),
    ({"routing": "fork", "routes": [{}]},
     "routing: expected 'serial' or 'parallel', got string 'fork'"),
    ({"routing": "serial"}, "routes: expected a non-empty array of route objects, missing"),
    ({"routing": "serial", "routes": []},
     "routes: expected a non-empty array of route objects, got array []"),
    ({"routing": "serial", "routes": ["sip:a@b"]},
     "routes[0]: expected a route object, got string 'sip:a@b'"),
    ({"routing": "serial", "routes": [{"uri": "http://x"}]},
     "routes[0].uri: expected a sip/sips/tel URI, got string 'http://x'"),
    ({"routing": "serial", "routes": [{"uri": "sip:"}]},
     "routes[0].uri: expected a sip/sips/tel URI, got string 'sip:' (Bad URI: missing host)"),
    ({"routing": "serial", "routes": [{"uri": "sip:a b@h"}]},
     "routes[0].uri: expected a sip/sips/tel URI, got string 'sip:a b@h' "
     "(Bad URI: whitespace or delimiter inside 'sip:a b@h')"),
    ({"routing": "serial", "routes": [{"dst_uri": "tel:+1"}]},
     "routes[0].dst_uri: expected a sip/sips URI, got string 'tel:+1'"),
    ({"routing": "serial", "routes": [{"uri": "sip:a@b\r\nX: y"}]},
     "routes[0].uri: control characters (CR, LF, ...) are not allowed"),
    ({"routing": "serial", "routes": [{"socket": "udp:127.0.0.1:99999"}]},
     "routes[0].socket: 'udp:127.0.0.1:99999': port out of range"),
    ({"routing": "serial", "routes": [{"branch_flags": -1}]},
     "routes[0].branch_flags: expected unsigned 32-bit integer, got integer -1"),
    ({"routing": "serial", "routes": [{"fr_inv_timer": 1.5}]},
     "routes[0].fr_inv_timer: expected integer milliseconds, got number 1.5"),
    ({"routing": "serial", "routes": [{"fr_timer": True}]},
     "routes[0].fr_timer: expected integer milliseconds, got boolean True"),
    ({"routing": "serial", "routes": [{"fr_timeout": 100}]},
     "routes[0]: unknown key 'fr_timeout' (did you mean 'fr_timer'?)"),
    ({"routing": "serial", "routes": [{"headers": "X-A: 1"}]},
     "routes[0].headers: expected an object with from/to/extra, got string 'X-A: 1'"),
    ({"routing": "serial", "routes": [{"headers": {"from": {}}}]},
     "routes[0].headers.from: expected display and/or uri"),
    ({"routing": "serial", "routes": [{"headers": {"to": {"uri": 5}}}]},
     "routes[0].headers.to.uri: expected string, got integer 5"),
    ({"routing": "serial", "routes": [{"headers": {"extra": "X-A 1\r\n"}}]},
     "routes[0].headers.extra: line 1 'X-A 1' is not a 'Name: value' header"),
    ({"routing": "serial", "routes": [{"headers": {"extra": "X-A: 1\r\nVia: evil\r\n"}}]},
     "routes[0].headers.extra: line 2 may not set Via (use headers.from/to for From and To)"),
])
def test_each_problem_names_its_field(doc: object, expected: str) -> None:
    assert problems_of(doc) == [expected]


def test_all_problems_are_reported_together() -> None:
    doc = {"routing": "serial", "routes": [{"uri": 1}, {"fr_timer": "x", "dst_uri": "x"}]}
    assert problems_of(doc) == [
        "routes[0].uri: expected string, got integer 1",
        "routes[1].dst_uri: expected a sip/sips URI, got string 'x'",
        "routes[1].fr_timer: expected integer milliseconds, got string 'x'",
    ]
    with pytest.raises(ValueError, match=r"routes\[0\]\.uri: .*; routes\[1\]\.dst_uri"):
        parse_document(doc)


def test_extra_without_final_crlf_and_bare_lf() -> None:
    doc = parse_document({"routing": "serial", "routes": [{"headers": {"extra": "A: 1\nB:2"}}]})
    assert doc.routes[0].extra_headers == (("A", "1"), ("B", "2"))


def serial(n: int) -> RouteWalk:
    return RouteWalk(parse_document(
        {"routing": "serial", "routes": [{"uri": f"sip:r{i}@h"} for i in range(n)]}))


def test_serial_walk_hands_out_one_route_at_a_time() -> None:
    walk = serial(3)
    assert walk.route_for_branch(0) is None
    assert [r.uri for r in walk.push()] == ["sip:r0@h"]
    assert walk.route_for_branch(0).uri == "sip:r0@h"
    assert walk.remaining() == 2
    assert walk.next().uri == "sip:r1@h"
    # the branch index does not matter in serial mode: the last route handed out applies
    assert walk.route_for_branch(7).uri == "sip:r1@h"
    assert walk.next().uri == "sip:r2@h"
    assert walk.next() is None and walk.remaining() == 0


def test_push_again_starts_over() -> None:
    walk = serial(2)
    walk.push()
    walk.next()
    assert [r.uri for r in walk.push()] == ["sip:r0@h"] and walk.remaining() == 1


def test_parallel_walk_pushes_all_and_has_no_next() -> None:
    walk = RouteWalk(parse_document(
        {"routing": "parallel", "routes": [{"uri": "sip:a@h"}, {"uri": "sip:b@h"}]}))
    assert [r.uri for r in walk.push()] == ["sip:a@h", "sip:b@h"]
    assert walk.next() is None and walk.remaining() == 0
    assert walk.route_for_branch(1).uri == "sip:b@h"
    assert walk.route_for_branch(2) is None


def test_parallel_routes_pushed_after_earlier_branches_start_at_their_branch() -> None:
    walk = RouteWalk(parse_document(
        {"routing": "parallel", "routes": [{"uri": "sip:a@h"}, {"uri": "sip:b@h"}]}))
    walk.push(first_branch=2)  # e.g. from a failure route, after branches 0 and 1
    assert walk.route_for_branch(1) is None
    assert [walk.route_for_branch(i).uri for i in (2, 3)] == ["sip:a@h", "sip:b@h"]
