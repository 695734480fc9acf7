"""Time-ordered UUIDs generated in the process.

Ids are made before the insert so that a whole batch of rows that reference each other can be
written with multi-row statements and no round trip per row. Time order keeps B-tree inserts at
the right edge of the index.
"""

import os
import time
import uuid


def new_id() -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68 & 0xFFF) << 64  # 12 random bits
    value |= 0x2 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
