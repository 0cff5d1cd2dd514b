"""Bytes per registered contact: 100,000 bindings saved through registrar.save() into an
in-memory usrloc table, measured with tracemalloc (Python objects and their strings).

    .venv/bin/python benchmarks/usrloc_memory.py [--count N]
"""
from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.registrar.save import Details, save
from kamrouter.modules.usrloc.location import Location
from kamrouter.sip import Request, parse


def register(i: int) -> Request:
    user = f"user{i:06d}"
    text = (f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:5060;"
            f"branch=z9hG4bK-{i}\r\n"
            f"From: <sip:{user}@example.com>;tag={i}\r\nTo: <sip:{user}@example.com>\r\n"
            f"Call-ID: {i:08x}-4f3e-11ee-be56-0242ac120002@10.0.0.1\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:5060;"
            f"transport=udp>\r\nUser-Agent: Yealink SIP-T46U 108.86.0.20\r\n"
            f"Expires: 3600\r\nContent-Length: 0\r\n\r\n")
    msg = parse(text.encode())
    assert isinstance(msg, Request)
    return msg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    count = parser.parse_args().count
    table = Location("location", time.time)
    cfg = RegistrarConfig()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        # Each request is freed after its save(): what stays is what the table keeps.
        save(register(i), table, Details(f"user{i:06d}", received=f"sip:192.0.2.{i & 255}:{1024 + i % 60000}",
                                 socket="udp:203.0.113.1:5060"), cfg)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert table.count_contacts() == count
    print(f"{count} bindings: {(after - before) / count:.0f} bytes per registered contact "
          f"(AoR key, binding, contact, Call-ID, received, ruid; User-Agent and socket shared)")


if __name__ == "__main__":
    main()
