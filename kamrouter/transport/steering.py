"""Datagrams steered to their worker by the kernel: a classic BPF program on each UDP
listener's SO_REUSEPORT group (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5) that picks the
group member from the worker mark of a branch id (``z9hG4bKw<index>-``,
:func:`kamrouter.pipeline.handoff.branch_mark`) in a datagram's first :data:`WINDOW` bytes,
where a reply's top Via, which is ours, usually is, and spreads the others by their source
port.

Member ``i`` of a group is worker ``i``'s socket: the supervisor binds them in that order
and never closes one while it runs. The program returns the digit of the first mark it
finds. A datagram without a mark goes to member ``(source port >> 1) % members``: a source
keeps its worker (a request's retransmissions and its CANCEL come from where it did), and
ports handed out in sequence (a load generator's callers, a NAT's) are spread evenly,
where the kernel's 4-tuple hash put three of four sipps on one worker in some runs and
held a two-worker router to two-thirds of its rate. The port's lowest bit is left out:
Linux gives a socket bound to port 0 an even port, so the lowest bit alone would send
every such client to one worker. The kernel falls back to its hash when the
program returns an index past the group (a mark of two digits, or not followed by a
digit and "-"). A request carrying a mark (from a kamrouter upstream) is steered too, the
same way for its retransmissions and its CANCEL (which carry the same branch): any worker
takes a new request. What the kernel did not steer, the workers still hand to each other
(:mod:`kamrouter.pipeline.handoff`).

The program is unrolled (classic BPF has no loops): for each offset, a length check and
a word compare, four instructions run per offset without a mark; the source port is read
from the UDP header through the network header (``SKF_NET_OFF``; an IPv6 packet's UDP
header is taken to follow its fixed header, as it does without extension headers).
"""
from __future__ import annotations

import ctypes
import socket
import struct

from kamrouter.sip import MAGIC_COOKIE

#: ``SO_ATTACH_REUSEPORT_CBPF`` from ``asm-generic/socket.h`` (not in Python's socket).
SO_ATTACH_REUSEPORT_CBPF = 51
#: Bytes from the start of the UDP payload searched for a mark: a reply's top Via branch
#: is within 130 of it unless the peer puts other headers first. A kernel that refuses a
#: program that long (its size counts against ``net.core.optmem_max``) gets one for half
#: the window, down to :data:`MIN_WINDOW`.
WINDOW = 256
MIN_WINDOW = 32
#: An index past any group: the kernel picks by its hash.
NO_MEMBER = 0xFFFFFFFF

# Classic BPF instructions (linux/filter.h), as (code, jump if true, jump if false, k).
_LDX_LEN = 0x81   # X = packet length
_LDX_IMM = 0x01   # X = k
_LD_IMM = 0x00    # A = k
_JGT_X = 0x2D     # A > X ?
_LD_W = 0x20      # A = 32-bit word at k
_LD_B_X = 0x50    # A = byte at X + k
_JEQ_K = 0x15     # A == k ?
_JA = 0x05        # jump k on
_SUB_K = 0x14     # A -= k
_RSH_K = 0x74     # A >>= k
_MOD_K = 0x94     # A %= k
_LDX_MSH = 0xB1   # X = 4 * (byte at k & 0xf): an IPv4 header's length
_LD_H_ABS = 0x28  # A = 16-bit word at k
_LD_H_IND = 0x48  # A = 16-bit word at X + k
_RET_K = 0x06     # return k
_RET_A = 0x16     # return A
#: Offsets from ``SKF_NET_OFF`` on address the network header (linux/filter.h).
_NET = -0x100000 & 0xFFFFFFFF
_IPV6_HEADER = 40

Instruction = tuple[int, int, int, int]

_MARK = (MAGIC_COOKIE + "w").encode()  # z9hG4bKw: two words, then the digit and "-"
_FIRST, _SECOND = (int.from_bytes(_MARK[i:i + 4], "big") for i in (0, 4))
_BLOCK = 9


def _at(offset: int, blocks_after: int, to_tail: int) -> list[Instruction]:
    """Is the mark at ``offset``? Yes: X = offset, on to the tail (``to_tail``
    instructions after this block); no: the next block. Past the packet's end: no mark,
    on to the source port (``blocks_after`` blocks after this one)."""
    return [
        (_LD_IMM, 0, 0, offset + len(_MARK) + 2),
        (_JGT_X, 0, 1, 0),
        (_JA, 0, 0, (blocks_after + 1) * _BLOCK - 3),
        (_LD_W, 0, 0, offset),
        (_JEQ_K, 0, 4, _FIRST),
        (_LD_W, 0, 0, offset + 4),
        (_JEQ_K, 0, 2, _SECOND),
        (_LDX_IMM, 0, 0, offset),
        (_JA, 0, 0, to_tail),
    ]


def _by_source_port(members: int, ipv6: bool) -> list[Instruction]:
    """Member ``(source port >> 1) % members``."""
    port = [(_LD_H_ABS, 0, 0, _NET + _IPV6_HEADER)] if ipv6 else \
        [(_LDX_MSH, 0, 0, _NET), (_LD_H_IND, 0, 0, _NET)]
    return [*port, (_RSH_K, 0, 0, 1), (_MOD_K, 0, 0, members), (_RET_A, 0, 0, 0)]


#: After a mark at X: its digit, if one digit and a "-" follow.
_TAIL: list[Instruction] = [
    (_LD_B_X, 0, 0, len(_MARK) + 1),
    (_JEQ_K, 1, 0, ord("-")),
    (_RET_K, 0, 0, NO_MEMBER),
    (_LD_B_X, 0, 0, len(_MARK)),
    (_SUB_K, 0, 0, ord("0")),  # not a digit: a huge index, the hash decides
    (_RET_A, 0, 0, 0),
]


def steering_program(members: int, ipv6: bool = False,
                     window: int = WINDOW) -> list[Instruction]:
    by_port = _by_source_port(members, ipv6)
    program: list[Instruction] = [(_LDX_LEN, 0, 0, 0)]
    for offset in range(window):
        after = window - offset - 1
        program += _at(offset, after, after * _BLOCK + len(by_port))
    return [*program, *by_port, *_TAIL]


def steer(sock: socket.socket, members: int) -> int:
    """Attach the program to the SO_REUSEPORT group of ``sock`` (``members`` sockets, every
    one, the ones bound later too); the window it searches, or OSError if the kernel
    refuses even the shortest."""
    window = WINDOW
    while True:
        program = steering_program(members, sock.family == socket.AF_INET6, window)
        filters = (ctypes.c_ubyte * (8 * len(program))).from_buffer_copy(
            b"".join(struct.pack("=HBBI", *instruction) for instruction in program))
        fprog = struct.pack("@HP", len(program), ctypes.addressof(filters))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
        except OSError:
            if window <= MIN_WINDOW:
                raise
            window //= 2
            continue
        return window
