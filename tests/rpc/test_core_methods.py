"""Core methods against a stand-in router built from the real registries."""
import json
import logging
import time

import pytest
import trio

from kamrouter.rpc.dispatch import Dispatcher


async def reply(router, method, *params) -> dict:
    request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
    return json.loads(await Dispatcher(router.rpc).handle(json.dumps(request).encode()))


async def rpc(router, method, *params):
    answer = await reply(router, method, *params)
    assert "error" not in answer, answer["error"]
    return answer["result"]


async def rpc_error(router, method, *params):
    return (await reply(router, method, *params))["error"]


@pytest.fixture
def stats(router):
    core = router.stats.counter("core", "rcv_requests")
    core.value = 7
    router.stats.counter("core", "fwd_requests").value = 3
    router.stats.counter("sl", "200_replies").value = 2
    for name, value in (("UAS_transactions", 10), ("UAC_transactions", 4), ("2xx_transactions", 9),
                        ("rpl_sent", 12)):
        router.stats.counter("tmx", name).value = value
    router.stats.gauge("tmx", "inuse_transactions", lambda: 3)
    router.stats.gauge("tmx", "active_transactions", lambda: 1)
    return router.stats


async def test_version_and_info(router):
    assert (await rpc(router, "core.version")).startswith("kamrouter ")
    info = await rpc(router, "core.info")
    assert {"version", "id", "compiler", "compiled", "flags"} <= info.keys()


async def test_uptime(router):
    router.started_at = time.time() - 65
    up = await rpc(router, "core.uptime")
    assert up["uptime"] >= 65 and set(up) == {"now", "up_since", "uptime"}
    assert up["up_since"] == time.ctime(router.started_at)


async def test_psx_lists_process_and_tasks(router, nursery):
    async def worker_loop():
        await trio.sleep_forever()
    nursery.start_soon(worker_loop, name="kamrouter.transport.udp.receive")
    nursery.start_soon(worker_loop, name="kamrouter.transport.udp.receive")
    processes = await rpc(router, "core.psx")
    assert processes[0]["IDX"] == 0 and processes[0]["DSC"].startswith("main process")
    assert len({p["PID"] for p in processes}) == 1
    assert "task kamrouter.transport.udp.receive (x2)" in [p["DSC"] for p in processes]


async def test_shmmem_is_real_process_memory(router):
    mem = await rpc(router, "core.shmmem")
    assert 0 < mem["used"] <= mem["max_used"] and mem["used"] < mem["total"]
    assert mem["free"] == mem["total"] - mem["used"]
    in_mb = await rpc(router, "core.shmmem", "m")
    assert in_mb["total"] == mem["total"] >> 20
    assert (await rpc_error(router, "core.shmmem", "x"))["code"] == 400


async def test_list_sockets_has_kamailio_shape(router):
    assert await rpc(router, "corex.list_sockets") == [{
        "PROTO": "udp", "NAME": "127.0.0.1", "ADDRLIST": {"ADDR": "127.0.0.1"}, "PORT": "5060",
        "MCAST": "no", "MHOMED": "no", "VIRTUAL": "no", "SOCKNAME": "-", "ADVERTISE": "-"}]


async def test_debug_gets_and_sets_the_router_logger(router):
    logger = logging.getLogger("kamrouter")
    saved = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert await rpc(router, "corex.debug") == {"debug": 2, "level": "info"}
        assert await rpc(router, "corex.debug", 3) == {"old": 2, "new": 3, "level": "debug"}
        assert logger.level == logging.DEBUG
        assert (await rpc(router, "corex.debug", "warning"))["new"] == 0
        assert logger.level == logging.WARNING
        assert (await rpc(router, "corex.debug", "-1"))["new"] == -1
        error = await rpc_error(router, "corex.debug", 7)
        assert error["code"] == 400 and "level" in error["message"]
        assert (await rpc_error(router, "corex.debug", [1]))["code"] == -32602
    finally:
        logger.setLevel(saved)


async def test_system_methods(router):
    names = await rpc(router, "system.listMethods")
    assert names == sorted(names) and {"core.uptime", "stats.fetch", "tm.stats"} <= set(names)
    assert (await rpc(router, "system.methodHelp", "core.psx")).startswith(
        "Returns the detailed description of running processes (and the router's tasks).\n"
        "kamrouter is one process;")
    assert await rpc(router, "system.methodHelp", "core.shmmem") == (  # every paragraph
        "Returns the memory usage of the router process (unit: b, k, m or g).\n"
        "kamrouter has no shared-memory pool: used and real_used are the resident set, "
        "max_used its peak, total the memory limit (cgroup) or the machine's RAM.")
    assert await rpc(router, "system.methodSignature", "stats.reset_statistics") == (
        "stats.reset_statistics(selector, [more...])")
    assert await rpc_error(router, "system.methodHelp", "nope") == {
        "code": 400, "message": "command not found"}


async def test_stats_selectors(router, stats):
    assert await rpc(router, "stats.get_statistics", "core:") == [
        "core:rcv_requests = 7", "core:fwd_requests = 3"]
    assert await rpc(router, "stats.fetch", "core:rcv_requests", "sl.200_replies") == {
        "core.rcv_requests": "7", "sl.200_replies": "2"}
    assert await rpc(router, "stats.fetchn", "rpl_sent") == {"tmx.rpl_sent": 12}
    everything = await rpc(router, "stats.fetchn", "all")
    assert everything.keys() == (await rpc(router, "stats.fetchn")).keys()  # memory moves
    assert {"core.rcv_requests", "tmx.inuse_transactions", "shmem.real_used_size"} <= everything.keys()
    # Overlapping selectors list a statistic once; unknown ones match nothing (as Kamailio).
    assert list(await rpc(router, "stats.fetch", "core:", "rcv_requests")) == [
        "core.rcv_requests", "core.fwd_requests"]
    assert await rpc(router, "stats.fetch", "nosuch") == {}


async def test_reset_and_clear(router, stats):
    assert await rpc(router, "stats.reset_statistics", "core:rcv_requests") == {}
    assert stats.get("core", "rcv_requests").value == 0
    assert stats.get("core", "fwd_requests").value == 3
    assert await rpc(router, "stats.clear_statistics", "core:") == {
        "core.rcv_requests": 0, "core.fwd_requests": 3}
    assert stats.get("core", "fwd_requests").value == 0
    assert (await rpc_error(router, "stats.reset_statistics"))["code"] == -32602


async def test_tm_stats_reads_tmx(router, stats):
    tm = await rpc(router, "tm.stats")
    assert tm["current"] == 3 and tm["waiting"] == 2
    assert tm["total"] == 14 and tm["total_local"] == 4 and tm["2xx"] == 9
    assert tm["rpl_sent"] == 12 and tm["freed"] == 11
    assert set(tm) == {"current", "waiting", "total", "total_local", "rpl_received",
                       "rpl_generated", "rpl_sent", "6xx", "5xx", "4xx", "3xx", "2xx",
                       "created", "freed", "delayed_free"}
