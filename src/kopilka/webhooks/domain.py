"""Pure rules of webhooks: secrets, Standard Webhooks signatures, event filters, the retry
schedule, URLs and the addresses they may reach. No I/O.

Signature (https://www.standardwebhooks.com): ``webhook-signature: v1,<base64 HMAC-SHA256
of "{webhook-id}.{webhook-timestamp}.{body}">`` keyed with the base64-decoded part of the
secret after ``whsec_``.
"""

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
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
# Names that are someone's own network whatever DNS says (RFC 6761 and private-use suffixes).
LOCAL_NAMES = ("localhost",)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    if any(c.isspace() or not c.isprintable() for c in url):
        return "a URL may not contain spaces or control characters"
    if "%" in parts.netloc:
        # A percent-escaped host is no host name: "%31%32%37.0.0.1" spells 127.0.0.1.
        return "the URL's host may not contain % escapes"
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


def address_problem(url: str, allow_private: bool) -> str | None:
    """Why the worker must not POST to ``url`` (already a valid :func:`url_problem` URL), or
    None: unless ``allow_private``, it must be https to a host that is not an address in
    loopback, private, link-local, unique-local, multicast, unspecified or reserved ranges
    (in any spelling: ``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``, full-width digits)
    nor a local name. Names are checked again when the worker resolves them."""
    if allow_private:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "the URL must start with https://"
    host = (parts.hostname or "").rstrip(".")
    try:
        # As the HTTP client sends it: IDNA, which also folds full-width digits.
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return f"{host!r} is not a host name"
    address = address_of(name)
    if address is not None:
        return None if is_public(address) else f"{host} is not a public address"
    if name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES):
        return f"{host} is not a public host"
    return None


def address_of(host: str) -> Address | None:
    """The address ``host`` spells, in any form a connection accepts (``::1``,
    ``fe80::1%eth0``, ``127.1``, ``0x7f.0.0.1``, ``2130706433``); None for a name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # every spelling C accepts
    except OSError:
        return None


def is_public(address: Address) -> bool:
    """Whether ``address`` is on the public internet: an IPv4 address carried inside IPv6
    (mapped, NAT64, 6to4) is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64:
            address = ipaddress.IPv4Address(address.packed[-4:])
        elif address.sixtofour is not None:
            address = address.sixtofour
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


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
