"""A SIP phone over WebSocket, as a browser's SIP stack would be (RFC 7118): its Via and
Contact hosts are ``.invalid``, so the proxy can reach it only over its own connection.
Just enough SIP for the tests and the README walkthrough: REGISTER (with digest
authentication when given a password), place a call (INVITE, ACK, BYE), answer one.

From the repository root: ``.venv/bin/python -m tests.support.wsphone URL --user alice
[--password PW] [--ca CA.pem] call sip:bob@example.com`` registers, calls, hangs up and
prints each final reply; ``... answer`` registers and answers one call.
"""
from __future__ import annotations

import argparse
import itertools
import secrets
import ssl
import sys
from dataclasses import dataclass, field

from websockets.sync.client import ClientConnection, connect

from kamrouter.sip import Request, Response, parse
from tests.support.digest import authorization

SDP = "v=0\r\no=alice 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    remote_target: str
    route: list[str]
    cseq: int = 1
    to_uri: str = ""


@dataclass
class WsPhone:
    url: str
    user: str = "alice"
    domain: str = "example.com"
    password: str | None = None
    origin: str | None = None
    ca: str | None = None
    host: str = field(default_factory=lambda: f"{secrets.token_hex(4)}.invalid")
    timeout: float = 10.0
    ws: ClientConnection | None = None
    _branches: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> WsPhone:
        context = ssl.create_default_context(cafile=self.ca) if self.url.startswith(
            "wss:") else None
        self.ws = connect(self.url, subprotocols=["sip"], origin=self.origin,  # type: ignore[arg-type]
                          ssl=context, open_timeout=self.timeout).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.ws is not None
        self.ws.__exit__(None, None, None)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

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
                to: str, to_tag: str | None = None, route: list[str] | tuple[str, ...] = (),
                body: str = "", headers: tuple[str, ...] = (), branch: str | None = None
                ) -> str:
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}{next(self._branches)}"
        proto = "WSS" if self.url.startswith("wss:") else "WS"
        lines = [f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/{proto} {self.host};branch={branch}",
                 "Max-Forwards: 70", f"From: <{self.aor}>;tag={from_tag}",
                 f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", f"Contact: {self.contact}",
                 "Supported: path, outbound"]
        lines += [f"Route: {r}" for r in route]
        lines += headers
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def _challenged(self, reply: Response, method: str, uri: str) -> tuple[str, ...]:
        """The credentials answering a 401/407 (none: the reply stands)."""
        if reply.status not in (401, 407) or self.password is None:
            return ()
        return (authorization(reply.to_bytes().decode(), self.user, self.password, method,
                              uri),)

    def register(self, expires: int = 600) -> Response:
        tag, call_id = secrets.token_hex(4), f"reg-{secrets.token_hex(6)}"
        registrar = f"sip:{self.domain}"
        headers: tuple[str, ...] = (f"Expires: {expires}",)
        for cseq in (1, 2):
            self.send(self.request("REGISTER", registrar, call_id=call_id, cseq=cseq,
                                   from_tag=tag, to=self.aor, headers=headers))
            reply = self.final()
            credentials = self._challenged(reply, "REGISTER", registrar)
            if not credentials:
                return reply
            headers = (f"Expires: {expires}", *credentials)
        return reply

    def call(self, ruri: str) -> Dialog:
        """INVITE ``ruri`` (again with credentials after a 407), ACK its 200; the dialog, to
        hang up with :meth:`bye`."""
        call_id, tag = f"ws-{secrets.token_hex(6)}", secrets.token_hex(4)
        headers: tuple[str, ...] = ()
        for cseq in (1, 2):
            branch = f"z9hG4bK{secrets.token_hex(6)}"
            self.send(self.request("INVITE", ruri, call_id=call_id, cseq=cseq, from_tag=tag,
                                   to=ruri, body=SDP, headers=headers, branch=branch))
            reply = self.final()
            if reply.status >= 300:  # hop-by-hop ACK of a failure: same branch and CSeq
                self.send(self.request("ACK", ruri, call_id=call_id, cseq=cseq, from_tag=tag,
                                       to=ruri, to_tag=reply.to_tag, branch=branch))
            headers = self._challenged(reply, "INVITE", ruri)
            if not headers:
                break
        assert reply.status == 200, reply.to_bytes()
        route = list(reversed(reply.get_all("Record-Route")))
        dialog = Dialog(call_id, tag, reply.to_tag or "", _uri_of(reply.get("Contact") or ""),
                        route, cseq, to_uri=ruri)
        self.send(self.request("ACK", dialog.remote_target, call_id=call_id, cseq=cseq,
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wsphone", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://host:port/ or wss://host:port/")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--domain", default="example.com")
    parser.add_argument("--password")
    parser.add_argument("--ca", help="CA certificate to verify a wss: server with")
    parser.add_argument("--origin")
    parser.add_argument("action", choices=("register", "call", "answer"))
    parser.add_argument("target", nargs="?", help="who to call")
    args = parser.parse_args(argv)
    with WsPhone(args.url, args.user, args.domain, args.password, args.origin,
                 args.ca) as phone:
        reply = phone.register()
        print(f"REGISTER: {reply.status} {reply.reason}")
        if reply.status != 200:
            return 1
        if args.action == "call":
            dialog = phone.call(args.target)
            print(f"INVITE {args.target}: 200 OK")
            reply = phone.bye(dialog)
            print(f"BYE: {reply.status} {reply.reason}")
        elif args.action == "answer":
            invite = phone.answer()
            phone.expect("ACK")
            bye = phone.expect("BYE")
            phone.send(phone.reply(bye, 200, "OK"))
            print(f"answered {invite.get('From')}, BYE: 200 OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
