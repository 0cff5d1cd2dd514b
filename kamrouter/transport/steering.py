"""Replies steered to their worker by the kernel: a classic BPF program on each UDP
listener's SO_REUSEPORT group (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5) that picks the
group member from the worker mark of a branch id (``z9hG4bKw<index>-``,
:func:`kamrouter.pipeline.handoff.branch_mark`) in a datagram's first :data:`WINDOW` bytes,
where a reply's top Via, which is ours, usually is.

Member ``i`` of a group is worker ``i``'s socket: the supervisor binds them in that order
and never closes one while it runs. The program returns the digit of the first mark it
finds; the kernel falls back to its 4-tuple hash when the program returns an index past
the group (no mark in the window, a mark of two digits or of a worker that does not
exist). A request carrying a mark (from a kamrouter upstream) is steered too, the same way
for its retransmissions and its CANCEL (which carry the same branch): any worker takes a
new request. What the kernel did not steer, the workers still hand to each other
(:mod:`kamrouter.pipeline.handoff`).

The program is unrolled (classic BPF has no loops): for each offset, a length check and
a word compare, four instructions run per offset without a mark.
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
_RET_K = 0x06     # return k
_RET_A = 0x16     # return A

Instruction = tuple[int, int, int, int]

_MARK = (MAGIC_COOKIE + "w").encode()  # z9hG4bKw: two words, then the digit and "-"
_FIRST, _SECOND = (int.from_bytes(_MARK[i:i + 4], "big") for i in (0, 4))
_BLOCK = 9


def _at(offset: int, to_tail: int) -> list[Instruction]:
    """Is the mark at ``offset``? Yes: X = offset, on to the tail (``to_tail``
    instructions after this block); no: the next block. Past the packet's end: no mark."""
    return [
        (_LD_IMM, 0, 0, offset + len(_MARK) + 2),
        (_JGT_X, 0, 1, 0),
        (_RET_K, 0, 0, NO_MEMBER),
        (_LD_W, 0, 0, offset),
        (_JEQ_K, 0, 4, _FIRST),
        (_LD_W, 0, 0, offset + 4),
        (_JEQ_K, 0, 2, _SECOND),
        (_LDX_IMM, 0, 0, offset),
        (_JA, 0, 0, to_tail),
    ]


#: After a mark at X: its digit, if one digit and a "-" follow.
_TAIL: list[Instruction] = [
    (_LD_B_X, 0, 0, len(_MARK) + 1),
    (_JEQ_K, 1, 0, ord("-")),
    (_RET_K, 0, 0, NO_MEMBER),
    (_LD_B_X, 0, 0, len(_MARK)),
    (_SUB_K, 0, 0, ord("0")),  # not a digit: a huge index, the hash decides
    (_RET_A, 0, 0, 0),
]


def steering_program(window: int = WINDOW) -> list[Instruction]:
    program: list[Instruction] = [(_LDX_LEN, 0, 0, 0)]
    for offset in range(window):
        # Blocks left after this one, then the "no mark" return: the tail follows.
        program += _at(offset, (window - offset - 1) * _BLOCK + 1)
    return [*program, (_RET_K, 0, 0, NO_MEMBER), *_TAIL]


def steer_replies(sock: socket.socket) -> int:
    """Attach the program to the SO_REUSEPORT group of ``sock`` (every member, the ones
    bound later too); the window it searches, or OSError if the kernel refuses even the
    shortest."""
    window = WINDOW
    while True:
        program = steering_program(window)
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
