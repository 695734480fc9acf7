"""Canonical JSON and request fingerprints for idempotency."""

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(value: Any) -> str:
    """A stable hash of a request body: same content, same hash, whatever the key order."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
