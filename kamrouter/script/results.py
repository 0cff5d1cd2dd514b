"""Kamailio-style return codes for script functions: positive is success, negative a reason.

``if not auth.auth_check(...)`` must be true for every failure, so a code is falsy when it is
not positive (a plain negative int would be truthy in Python).
"""
from __future__ import annotations

from enum import IntEnum


class ReturnCode(IntEnum):
    def __bool__(self) -> bool:
        return self.value > 0
