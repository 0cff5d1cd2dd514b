#!/usr/bin/env python3
"""Reference routing API for kamrouter over HTTP (``[api] transport = "http"``).

kamrouter POSTs one JSON event per new call and applies the JSON answer:

    python examples/controllers/http_controller.py --port 8090 --table table.json [-v]

See prefix_table.py for the table and README.md for the event and answer documents.
"""
from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prefix_table import PrefixTable, describe


class RoutingApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: kamrouter reuses its connections
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    wbufsize = 65536  # ... and in one write, so kamrouter reads the answer in one go
    table: PrefixTable
    verbose = False

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        decision = self.table.route(event)
        if self.verbose:
            print(describe(event, decision), flush=True)
        answer = json.dumps(decision).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per call is too much at hundreds of calls per second


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connection bursts (clients wait 1 s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--table", required=True, help="prefix table (JSON file)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every decision")
    args = parser.parse_args()
    RoutingApi.table = PrefixTable.load(args.table)
    RoutingApi.verbose = args.verbose
    server = Server((args.host, args.port), RoutingApi)
    print(f"routing API listening on http://{args.host}:{server.server_address[1]}/",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
