"""A SIP phone over WebSocket, as a browser's SIP stack would be (RFC 7118): its Via and
Contact hosts are ``.invalid``, so the proxy can reach it only over its own connection.
Just enough SIP for the tests: place a call (INVITE, ACK, BYE), answer one, REGISTER."""
from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from websockets.sync.client import ClientConnection, connect

from kamrouter.sip import Request, Response, parse

SDP = "v=0\r\no=alice 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    remote_target: str
    route: list[str]
    cseq: int = 1
    from_uri: str = ""
    to_uri: str = ""


@dataclass
class WsPhone:
    url: str
    user: str = "alice"
    origin: str | None = None
    host: str = field(default_factory=lambda: f"{secrets.token_hex(4)}.invalid")
    timeout: float = 10.0
    ws: ClientConnection | None = None
    _branches: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> WsPhone:
        self.ws = connect(self.url, subprotocols=["sip"], origin=self.origin,
                          open_timeout=self.timeout).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.ws is not None
        self.ws.__exit__(None, None, None)

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host};transport=ws>"

    def send(self, text: str) -> None:
        assert self.ws is not None
        self.ws.send(text)

    def receive(self) -> Request | Response:
        assert self.ws is not None
        data = self.ws.recv(timeout=self.timeout)
        return parse(data.encode() if isinstance(data, str) else data)

    def final(self) -> Response:
        """Replies until the final one (provisionals skipped)."""
        while True:
            reply = self.receive()
            assert isinstance(reply, Response), reply
            if reply.status >= 200:
                return reply

    def request(self, method: str, ruri: str, *, call_id: str, cseq: int, from_tag: str,
                to: str, to_tag: str | None = None, route: list[str] = (),
                body: str = "", headers: str = "") -> str:
        via = f"SIP/2.0/WS {self.host};branch=z9hG4bK{secrets.token_hex(6)}{next(self._branches)}"
        lines = [f"{method} {ruri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
                 f"From: <sip:{self.user}@example.test>;tag={from_tag}",
                 f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", f"Contact: {self.contact}"]
        lines += [f"Route: {r}" for r in route]
        if headers:
            lines.append(headers)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def register(self, registrar: str) -> Response:
        tag = secrets.token_hex(4)
        self.send(self.request("REGISTER", registrar, call_id=f"reg-{tag}", cseq=1,
                               from_tag=tag, to=f"sip:{self.user}@example.test",
                               headers="Expires: 600"))
        return self.final()

    def call(self, ruri: str) -> Dialog:
        """INVITE ``ruri``, ACK its 200; the dialog, to hang up with :meth:`bye`."""
        call_id, tag = f"ws-{secrets.token_hex(6)}", secrets.token_hex(4)
        self.send(self.request("INVITE", ruri, call_id=call_id, cseq=1, from_tag=tag, to=ruri,
                               body=SDP))
        ok = self.final()
        assert ok.status == 200, ok.to_bytes()
        route = list(reversed(ok.get_all("Record-Route")))
        dialog = Dialog(call_id, tag, ok.to_tag or "", _uri_of(ok.get("Contact") or ""), route,
                        to_uri=ruri)
        self.send(self.request("ACK", dialog.remote_target, call_id=call_id, cseq=1,
                               from_tag=tag, to=ruri, to_tag=dialog.remote_tag, route=route))
        return dialog

    def bye(self, dialog: Dialog) -> Response:
        dialog.cseq += 1
        self.send(self.request("BYE", dialog.remote_target, call_id=dialog.call_id,
                               cseq=dialog.cseq, from_tag=dialog.local_tag, to=dialog.to_uri,
                               to_tag=dialog.remote_tag, route=dialog.route))
        return self.final()

    def answer(self) -> Request:
        """Wait for an INVITE and answer it 180 then 200; the INVITE."""
        invite = self.receive()
        assert isinstance(invite, Request) and invite.method == "INVITE", invite
        tag = secrets.token_hex(4)
        for status, reason, body in ((180, "Ringing", ""), (200, "OK", SDP)):
            self.send(self.reply(invite, status, reason, tag, body))
        return invite

    def expect(self, method: str) -> Request:
        request = self.receive()
        assert isinstance(request, Request) and request.method == method, request
        return request

    def reply(self, request: Request, status: int, reason: str, tag: str = "",
              body: str = "") -> str:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in request.get_all("Via")]
        lines += [f"Record-Route: {r}" for r in request.get_all("Record-Route")]
        to = request.get("To") or ""
        lines += [f"From: {request.get('From')}", f"To: {to}" + (f";tag={tag}" if tag and
                                                                  ";tag=" not in to else ""),
                  f"Call-ID: {request.call_id}", f"CSeq: {request.get('CSeq')}",
                  f"Contact: {self.contact}"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body


def _uri_of(name_addr: str) -> str:
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()
