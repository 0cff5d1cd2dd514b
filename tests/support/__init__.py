"""Harness for tests and benchmarks that drive a real proxy with real sipp peers.

- :mod:`.ports`    free loopback ports and "is anyone listening there yet" probes
- :mod:`.sipp`     one sipp process (UAC or UAS) and what it reported
- :mod:`.siptrace` sipp's message log parsed into messages a test can inspect
- :mod:`.proxy`    a proxy process (kamrouter or Kamailio): config files, start, readiness, stop
- :mod:`.lab`      a test's workspace tying these together and cleaning up after it
- :mod:`.wait`     bounded waits (``wait_until``) for what other processes do meanwhile
- :mod:`.rpc`      JSON-RPC calls to a router's control socket
"""
