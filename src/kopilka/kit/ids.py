"""Time-ordered UUIDs generated in the process.

Ids are made before the insert so that a whole batch of rows that reference each other can be
written with multi-row statements and no round trip per row. Time order keeps B-tree inserts at
the right edge of the index.
"""

import os
import time
import uuid

# Ids appear in URLs and must not be guessable from one another, so their random bits come
# from the operating system's CSPRNG. A system call per id would cost about a third of a
# microsecond on the purchase path (several ids per purchase), so random bytes are read in
# blocks and handed out one 74-bit draw at a time.
_DRAWS_PER_READ = 256
# 80 bits read, 74 used: 12 after the timestamp and the version, 62 after the variant.
_RANDOM_BYTES = 10
_RAND_A = 0xFFF << 64
_RAND_B = (1 << 62) - 1
_TIMESTAMP_MASK = (1 << 48) - 1
_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)

# Draws not yet handed out. ``list.pop`` is atomic, so threads never share a draw; two
# threads finding it empty at once both refill, which only reads a few bytes more.
_draws: list[int] = []


def _refill() -> None:
    block = os.urandom(_RANDOM_BYTES * _DRAWS_PER_READ)
    _draws.extend(
        int.from_bytes(block[i : i + _RANDOM_BYTES]) for i in range(0, len(block), _RANDOM_BYTES)
    )


# A forked worker must never hand out its parent's remaining draws.
os.register_at_fork(after_in_child=_draws.clear)


def new_id() -> uuid.UUID:
    """A version-7 UUID (RFC 9562): 48 bits of Unix milliseconds, the version, 12 random
    bits, the variant, 62 random bits; the random bits come from ``os.urandom``."""
    millis = time.time_ns() // 1_000_000
    while True:
        try:
            rand = _draws.pop()
            break
        except IndexError:
            _refill()
    value = (millis & _TIMESTAMP_MASK) << 80 | _VERSION_AND_VARIANT
    value |= rand & _RAND_A | rand & _RAND_B
    return uuid.UUID(int=value)
