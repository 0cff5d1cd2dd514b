"""An HTTP peer on 127.0.0.1 answering every POST with JSON, served from a thread: a routing
API (controller, credentials endpoint) for the tests. JSON-RPC aware: a JSON-RPC request's
answer gets the ``jsonrpc`` and ``id`` members added."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .ports import LOOPBACK


class JsonPeer(ThreadingHTTPServer):
    """Answers ``answer``: a JSON value, bytes (sent as they are: hostile answers), or a
    callable computing either from the request's JSON. ``events`` holds the requests."""

    daemon_threads = True

    def __init__(self, answer: Any | Callable[[Any], Any], port: int = 0) -> None:
        super().__init__((LOOPBACK, port), JsonPeerHandler)
        self.answer = answer
        self.events: list[Any] = []
        self._connections: list[socket.socket] = []

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        self._connections.append(connection)
        return connection, address

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/"

    def serve_in_thread(self) -> JsonPeer:
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening and end the keep-alive connections: the peer is gone."""
        self.shutdown()
        for connection in self._connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed already
                pass
        self.server_close()


class JsonPeerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: JsonPeer

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.events.append(request)
        answer = self.server.answer
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, bytes):
            body = answer
        else:
            if request.get("jsonrpc") == "2.0":
                answer = {"jsonrpc": "2.0", "id": request["id"], **answer}
            body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
