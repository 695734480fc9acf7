"""Ids: RFC 9562 version-7 layout, time order, uniqueness, and random bits from the OS."""

import itertools
import os
import uuid

import pytest

from kopilka.kit import ids
from kopilka.kit.ids import new_id

MS = 1_000_000  # nanoseconds


def at_millis(monkeypatch: pytest.MonkeyPatch, millis: int) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: millis * MS + 123)


def test_version_and_variant_bits() -> None:
    for _ in range(2_000):
        made = new_id()
        assert made.version == 7
        assert made.variant == uuid.RFC_4122
        assert (made.int >> 76) & 0xF == 0x7
        assert (made.int >> 62) & 0x3 == 0x2


def test_the_first_48_bits_are_the_unix_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    at_millis(monkeypatch, 1_767_225_600_000)  # 2026-01-01T00:00:00Z
    assert new_id().int >> 80 == 1_767_225_600_000


def test_ids_of_a_later_millisecond_sort_after_earlier_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches = []
    for millis in (1_767_225_600_000, 1_767_225_600_001, 1_767_225_600_002, 1_800_000_000_000):
        at_millis(monkeypatch, millis)
        batches.append([new_id() for _ in range(200)])
    for earlier, later in itertools.pairwise(batches):
        assert max(earlier) < min(later)
        assert max(str(i) for i in earlier) < min(str(i) for i in later)  # as text too


def test_ids_are_unique_even_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    at_millis(monkeypatch, 1_767_225_600_000)
    assert len({new_id() for _ in range(100_000)}) == 100_000


def test_the_random_bits_are_read_from_the_os_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def urandom(size: int) -> bytes:
        reads.append(size)
        return bytes(range(256)) * (size // 256) + bytes(range(size % 256))

    monkeypatch.setattr(ids.os, "urandom", urandom)
    monkeypatch.setattr(ids, "_draws", [])
    at_millis(monkeypatch, 1)
    made = new_id()
    assert reads == [10 * 256]  # one read serves 256 ids
    # The last 10-byte draw of the block is handed out first: bytes 2550..2559 of the block.
    draw = int.from_bytes(bytes(i % 256 for i in range(2550, 2560)))
    assert made.int & ((1 << 62) - 1) == draw & ((1 << 62) - 1)
    assert (made.int >> 64) & 0xFFF == (draw >> 64) & 0xFFF
    for _ in range(255):
        new_id()
    assert reads == [2560]
    new_id()
    assert reads == [2560, 2560]  # the block is used up: the next id reads another


def test_a_forked_child_does_not_reuse_the_parents_random_bits() -> None:
    new_id()  # the parent now holds unused draws
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, new_id().bytes)
        os._exit(0)
    os.close(write)
    child = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_id()
    random_bits = (0xFFF << 64) | ((1 << 62) - 1)
    assert child.int & random_bits != parent.int & random_bits
