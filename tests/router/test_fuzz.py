"""All-byte fuzzing of the whole SIP receive path, in process, with a fixed seed.

A real :class:`Router` with the default routing script gets mutated messages as UDP
datagrams (``Proxy.on_message``, the transports' entry point), as TCP streams (a real
:class:`TcpConnection` reading a memory stream, so framing runs too) and as WebSocket
connections (a mutated upgrade, then frames with mutated SIP or mutated frame bytes): parse, sanity, tm, the
script, the reply path. Nothing reaches a network: the UDP socket's ``send`` is recorded
(so ``Transports.send`` with its own-socket check still runs), there is no TCP listener to
send through, and DNS is off (hostile host names get 478). Replies are also built from the
requests the router relayed, so mutated replies match real branches.

Pass: no exception escapes anywhere (the last-resort guards' counters stay at 0, the tasks
the router spawns do not fail) and no hook of the default script raised.
"""
from __future__ import annotations

import random

import trio
import trio.testing

from kamrouter.core.router import Router
from kamrouter.core.settings import Settings
from kamrouter.net import Endpoint
from kamrouter.sip import Request, SipParseError, make_response, parse
from kamrouter.transport.tcp import TcpConnection
from kamrouter.transport.ws import WebsocketConfig, WsCodec

from support.fuzzing import Mutator, numbered, sip_seeds, ws_frame, ws_upgrade

SEED = 20261203
UDP_CASES = 20000
TCP_CONNECTIONS = 2000
WS_CONNECTIONS = 500
CALLER = Endpoint("udp", "127.0.0.1", 5071)
SINK = Endpoint("udp", "127.0.0.1", 5072)


class FakeClock:
    """The scheduler's time, moved on by the test: timers fire as if time passed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float, router: Router) -> None:
        self.now += seconds
        router.scheduler.fire_due(self.now)


class Recorder:
    """Stands in for a UDP socket's sendto: what the router sent, where."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Endpoint]] = []

    def send(self, data: bytes, dest: Endpoint) -> None:
        self.sent.append((data, dest))


def build_router(clock: FakeClock) -> tuple[Router, Recorder, Endpoint]:
    settings = Settings()
    settings.core.listen = ["udp:127.0.0.1:0"]
    settings.core.dns = False
    router = Router(settings)
    router.clock = router.scheduler.clock = clock
    recorder = Recorder()
    (udp,) = router.transports.udp
    udp.send = recorder.send  # type: ignore[method-assign]
    router.proxy.identity.add(udp.endpoint)
    return router, recorder, udp.endpoint


def replies_to_relayed(sent: list[tuple[bytes, Endpoint]], rng: random.Random) -> list[bytes]:
    """Replies (1xx-6xx) to requests the router relayed: they match real branches."""
    replies = []
    for data, _ in sent:
        try:
            request = parse(data)
        except SipParseError:
            continue
        if isinstance(request, Request) and request.method != "ACK":
            status = rng.choice((100, 180, 183, 200, 302, 404, 486, 503, 603))
            replies.append(make_response(request, status, to_tag="fz").to_bytes())
    return replies


async def test_all_byte_fuzz_never_escapes_the_receive_path() -> None:
    clock = FakeClock()
    router, recorder, local = build_router(clock)
    proxy = router.proxy
    mutate = Mutator(SEED)
    rng = mutate.rng
    seeds = sip_seeds(CALLER.port, f"{local.host}:{local.port}", f"{SINK.host}:{SINK.port}")
    tcp_local = Endpoint("tcp", local.host, local.port)
    async with trio.open_nursery() as nursery:
        router._nursery = nursery  # spawn() for the router's own tasks
        for n in range(UDP_CASES):
            seed = numbered(rng.choice(seeds), n % 50)  # Call-IDs recur: in-dialog paths
            already = len(recorder.sent)
            proxy.on_message(mutate.case(seed, seeds), CALLER, local)
            for reply in replies_to_relayed(recorder.sent[already:], rng):
                proxy.on_message(mutate.case(reply) if rng.random() < 0.7 else reply, SINK, local)
            if n % 50 == 49:
                clock.advance(0.5, router)  # retransmissions, timeouts, failure routes
                recorder.sent.clear()
            await trio.lowlevel.checkpoint()
        ws_local = Endpoint("ws", local.host, local.port)
        for n in range(TCP_CONNECTIONS + WS_CONNECTIONS):
            client, server = trio.testing.memory_stream_pair()
            websocket = n >= TCP_CONNECTIONS
            remote = Endpoint("ws" if websocket else "tcp", "127.0.0.1", 40000 + n)
            conn = TcpConnection(server, remote, ws_local if websocket else tcp_local,
                                 router.settings.core.max_message_size, router.clock,
                                 msg_read_timeout=5.0,  # type: ignore[arg-type]
                                 websocket=WsCodec(WebsocketConfig(
                                     allowed_origins=["https://phone.example"],
                                     max_message_size=4096)) if websocket else None)
            messages = [mutate.case(numbered(rng.choice(seeds), n))
                        for _ in range(rng.randint(1, 3))]
            if websocket:
                upgrade = ws_upgrade(f"{local.host}:{local.port}", rng.choice(
                    (None, "https://phone.example", "https://evil.example")))
                frames = b"".join(ws_frame(m, rng, opcode=rng.choice((1, 1, 1, 2)))
                                  + (ws_frame(b"p", rng, opcode=9) if rng.random() < 0.2 else b"")
                                  for m in messages)
                stream = (mutate.case(upgrade) if rng.random() < 0.2 else upgrade) + (
                    mutate.case(frames) if rng.random() < 0.3 else frames)
            else:
                stream = b"".join(messages)
            async with trio.open_nursery() as connection:
                connection.start_soon(conn.run, proxy.on_message)
                with trio.move_on_after(10):  # the reader ends at EOF; never hang the suite
                    try:
                        for chunk in mutate.chunks(stream):
                            await client.send_all(chunk)
                        await client.send_eof()
                        while await client.receive_some(65536):
                            pass
                    except trio.BrokenResourceError:
                        pass  # the router closed the stream after a framing error
                connection.cancel_scope.cancel()
        for _ in range(60):  # five minutes: every transaction times out and ends
            clock.advance(5, router)
        nursery.cancel_scope.cancel()
    stats = {f"{s.group}:{s.name}": s.value for s in router.stats}
    print({name: value for name, value in stats.items() if value})
    assert stats["core:drops_internal_error_udp"] == 0
    assert stats["core:drops_internal_error_tcp"] == 0
    assert stats["core:script_errors"] == 0
    # the fuzz reached the layers behind the parser, not only its error paths
    assert stats["core:fwd_requests"] > 100 and stats["core:rcv_replies"] > 100
    assert stats["core:err_requests"] > 100
