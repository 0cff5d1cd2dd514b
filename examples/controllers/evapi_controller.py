#!/usr/bin/env python3
"""Reference routing API for kamrouter over its evapi socket (``[api] transport = "evapi"``).

Connects to kamrouter's evapi socket, answers every ``sip-routing`` event with the decision
of the prefix table, echoing the event's ``id`` so kamrouter resumes the right call:

    python examples/controllers/evapi_controller.py --connect 127.0.0.1:8448 --table table.json [-v]

Messages are netstrings (``<length>:<json>,``) both ways. The connection is retried until
kamrouter accepts it.
"""
from __future__ import annotations

import argparse
import json
import socket
import time
from collections.abc import Iterator

from prefix_table import PrefixTable, describe


def netstrings(sock: socket.socket) -> Iterator[bytes]:
    """The messages arriving on ``sock``, until kamrouter closes it."""
    buffer = b""
    while chunk := sock.recv(65536):
        buffer += chunk
        while b":" in buffer:
            length, _, rest = buffer.lstrip().partition(b":")
            if len(rest) <= int(length):
                break  # the rest of this message is still on its way
            yield rest[:int(length)]
            buffer = rest[int(length) + 1:]


def connect(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    while True:
        try:
            sock = socket.create_connection((host, int(port)))
        except ConnectionRefusedError:
            time.sleep(0.2)  # kamrouter not up yet
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answer each call at once
        return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connect", default="127.0.0.1:8448", help="kamrouter evapi host:port")
    parser.add_argument("--table", required=True, help="prefix table (JSON file)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every decision")
    args = parser.parse_args()
    table = PrefixTable.load(args.table)
    sock = connect(args.connect)
    print(f"connected to evapi {args.connect}", flush=True)
    for message in netstrings(sock):
        event = json.loads(message)
        if event.get("event") != "sip-routing":
            continue
        decision = table.route(event)
        if args.verbose:
            print(describe(event, decision), flush=True)
        answer = json.dumps({"id": event["id"], **decision}).encode()
        sock.sendall(b"%d:%s," % (len(answer), answer))


if __name__ == "__main__":
    main()
