"""The supervisor's merge of its workers' status answers (kamrouter.core.worker_status)."""
import pytest

from kamrouter.core.worker_status import merge
from kamrouter.rpc.registry import RpcError


def test_own_numbers_add_up_and_the_rest_is_worker_0s() -> None:
    answers = [{"readers": 1, "max_connections": 2048, "opened_connections": 2,
                "opened_tls_connections": 0, "write_queued_bytes": 10},
               {"readers": 1, "max_connections": 2048, "opened_connections": 3,
                "opened_tls_connections": 0, "write_queued_bytes": 5}]
    assert merge("core.tcp_info", answers) == {
        "readers": 2, "max_connections": 2048, "opened_connections": 5,
        "opened_tls_connections": 0, "write_queued_bytes": 15}


def test_the_latest_error_is_the_routers() -> None:
    zero = {"state": "open", "answers": 1, "last_error": "", "last_error_at": 0.0}
    one = {"state": "closed", "answers": 2, "last_error": "timeout", "last_error_at": 17.5}
    merged = merge("api.status", [zero, one])
    assert merged == {"state": "open", "answers": 3, "last_error": "timeout",
                      "last_error_at": 17.5}
    later = {**zero, "last_error": "HTTP 500", "last_error_at": 18.0}
    assert merge("api.status", [later, one])["last_error"] == "HTTP 500"


def test_a_hostile_or_odd_answer_is_no_crash() -> None:
    with pytest.raises(RpcError):
        merge("api.status", [{"answers": 1}, ["not", "an", "object"]])
    assert merge("api.status", [{"answers": 1}, {"answers": "x", "last_error_at": True}]) \
        == {"answers": 1}
