"""Canonical JSON and request fingerprints for idempotency."""

import hashlib
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no whitespace: equal content gives equal bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)


def fingerprint(value: Any) -> str:
    """A stable hash of a request body: same content, same hash, whatever the key order."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
