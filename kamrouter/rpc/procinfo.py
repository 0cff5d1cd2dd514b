"""The router process's own resource usage, read from the kernel (Linux ``/proc``)."""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Memory:
    """Bytes: ``total`` the memory available to the process (cgroup limit or RAM), ``rss``
    resident now, ``peak_rss`` the high-water mark, ``virtual`` the address space size."""

    total: int
    rss: int
    peak_rss: int
    virtual: int

    @property
    def free(self) -> int:
        return max(self.total - self.rss, 0)


def _status_fields() -> dict[str, int]:
    """``/proc/self/status`` sizes in bytes (``VmRSS: 1234 kB`` → ``{"VmRSS": 1263616}``)."""
    fields = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return fields


def _available_total() -> int:
    """The cgroup v2 memory limit when one is set, else the machine's RAM."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as limit:
            text = limit.read().strip()
    except OSError:
        return ram
    return min(int(text), ram) if text.isdigit() else ram


def memory() -> Memory:
    fields = _status_fields()
    peak_fallback = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss = fields.get("VmRSS", peak_fallback)
    return Memory(total=_available_total(), rss=rss, peak_rss=fields.get("VmHWM", peak_fallback),
                  virtual=fields.get("VmSize", 0))
