"""Pure rules of webhooks: secrets, Standard Webhooks signatures, event filters, the retry
schedule, URLs. No I/O.

Signature (https://www.standardwebhooks.com): ``webhook-signature: v1,<base64 HMAC-SHA256
of "{webhook-id}.{webhook-timestamp}.{body}">`` keyed with the base64-decoded part of the
secret after ``whsec_``.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from kopilka.kit.bulk import json_dumps
from kopilka.outbox.consumers import matches

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# After the first failed attempt, wait this long before each next one: about 28 hours in
# all, then the delivery has failed.
SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
MAX_URL = 2000
EVENT_TYPE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-*")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of one message."""
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "user-agent": "kopilka-webhooks/1",
    }


def body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The JSON body: ``type``, ``timestamp`` (when the event happened) and ``data`` (the
    envelope and the payload)."""
    return json_dumps({"type": event_type, "timestamp": occurred_at.isoformat(), "data": data})


def wants(event_types: Iterable[str], event_type: str) -> bool:
    return matches(event_types, event_type)


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None once the schedule is done."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + SCHEDULE[attempts - 1]


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive webhooks, or None."""
    if len(url) > MAX_URL:
        return f"a URL has at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL has no host"
    if any(c.isspace() for c in url):
        return "a URL may not contain spaces"
    try:
        port = parts.port
    except ValueError:
        return "the URL's port is not a number from 1 to 65535"
    if port == 0:
        return "the URL's port is not a number from 1 to 65535"
    if parts.username is not None or parts.password is not None:
        # They would be stored and shown back in every answer: the signature authenticates.
        return "a URL may not carry a user name or password"
    return None


def event_type_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not ``*``, an event type or ``prefix.*``, or None."""
    if pattern == "*":
        return None
    if not pattern or len(pattern) > 100 or not set(pattern) <= EVENT_TYPE_CHARS:
        return "an event type is lower-case letters, digits, '_', '-' and '.', or '*'"
    if "*" in pattern.removesuffix(".*") or pattern.startswith("."):
        return "'*' may only stand alone or end a prefix ('points.*')"
    return None


# --- what the repository hands back ---------------------------------------------------------


@dataclass(frozen=True)
class EndpointRow:
    id: UUID
    program_id: UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    secret: str
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    id: UUID
    endpoint_id: UUID
    program_id: UUID
    event_id: UUID
    event_type: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class AttemptRow:
    id: int
    delivery_id: UUID
    attempted_at: datetime
    status_code: int | None
    response: str | None
    duration_ms: int
    error: str | None
    succeeded: bool


@dataclass(frozen=True)
class Leased:
    """A delivery in a sender's hands, with what it needs to send it."""

    delivery: DeliveryRow
    url: str
    secret: str
