"""Time-ordered UUIDs generated in the process.

Ids are made before the insert so that a whole batch of rows that reference each other can be
written with multi-row statements and no round trip per row. Time order keeps B-tree inserts at
the right edge of the index.
"""

import os
import random
import time
import uuid

# Ids need to be unique and unguessable enough not to be enumerated, not secret: a generator
# seeded once from the OS is enough and costs far less than a system call per id.
_random = random.Random(os.urandom(32))
# A forked worker must not repeat its parent's sequence.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id() -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = _random.getrandbits(80)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68 & 0xFFF) << 64  # 12 random bits
    value |= 0x2 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
