"""Signed links a message carries: unsubscribe, the preference page, a confirmation of the
address (double opt-in) and tracked clicks.

A link works without a login, so it proves itself: its token is the data (program, member,
channel, the target URL of a click) and an HMAC-SHA256 of that data under the program's
link secret. A token changed by one character is refused; one made for another program
does not verify under this program's secret.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

MAC_BYTES = 16  # 128 bits: forging needs 2^128 guesses


class BadLink(ValueError):
    """The token is not one this program signed."""


@dataclass(frozen=True)
class LinkData:
    action: str  # unsubscribe, preferences, confirm, click
    program_id: UUID
    member_id: UUID | None = None
    channel: str | None = None
    message_id: UUID | None = None
    url: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> bytes:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def sign(secret: str, data: LinkData) -> str:
    fields: dict[str, Any] = {"a": data.action, "p": data.program_id.hex}
    if data.member_id is not None:
        fields["m"] = data.member_id.hex
    if data.channel is not None:
        fields["c"] = data.channel
    if data.message_id is not None:
        fields["i"] = data.message_id.hex
    if data.url is not None:
        fields["u"] = data.url
    body = _b64(json.dumps(fields, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, body))}"


def program_of(token: str) -> UUID:
    """The program a token claims (unverified: to find whose secret checks it)."""
    return _fields(token.partition(".")[0])[1]


def _fields(body: str) -> tuple[dict[str, Any], UUID]:
    try:
        fields = json.loads(_unb64(body))
        if not isinstance(fields, dict) or not isinstance(fields.get("p"), str):
            raise BadLink("this link is damaged")
        return fields, UUID(hex=fields["p"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise BadLink("this link is damaged") from None


def verify(secret: str, token: str, action: str) -> LinkData:
    body, _, mac = token.partition(".")
    # Compared as text: base64 leaves spare bits in its last character, and a token must
    # verify in exactly one spelling.
    if not hmac.compare_digest(mac.encode(), _b64(_mac(secret, body)).encode()):
        raise BadLink("this link is not valid")
    fields, program_id = _fields(body)
    if fields.get("a") != action:
        raise BadLink("this link is for something else")
    try:
        channel, url = fields.get("c"), fields.get("u")
        if not isinstance(channel, str | None) or not isinstance(url, str | None):
            raise BadLink("this link is damaged")
        return LinkData(
            action=action,
            program_id=program_id,
            member_id=UUID(hex=fields["m"]) if "m" in fields else None,
            channel=channel,
            message_id=UUID(hex=fields["i"]) if "i" in fields else None,
            url=url,
        )
    except (ValueError, TypeError, AttributeError):
        raise BadLink("this link is damaged") from None
