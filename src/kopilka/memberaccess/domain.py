"""Pure rules of members' sessions and sign-in codes: tokens and codes, their hashes, how
long they last and how many tries a code takes."""

import hashlib
import hmac
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from kopilka.errors import InvalidInput
from kopilka.members.domain import normalise_email, normalise_phone

SESSION_PREFIX = "km_"
# A phone stays signed in to its loyalty card for a long time, as with any card app; signing
# out, erasure, a block or a merge end it sooner.
SESSION_DAYS = 90


@dataclass(frozen=True, slots=True)
class MemberSession:
    """Who a member session stands for."""

    session_id: UUID
    program_id: UUID
    member_id: UUID


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # 256 random bits: a plain SHA-256 is enough (nothing to stretch).
    return hashlib.sha256(token.encode()).hexdigest()


def session_expiry(now: datetime) -> datetime:
    return now + timedelta(days=SESSION_DAYS)


# --- one-time sign-in codes --------------------------------------------------------------

CODE_DIGITS = 6
CODE_MINUTES = 10
# Tries a code takes (the right one included): with a million codes and a new code needing
# a new request (rate-limited per address), guessing is hopeless.
CODE_TRIES = 5


class CodeChannel(StrEnum):
    """Where a code goes: the address the member typed is an e-mail or a phone number."""

    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Address:
    """A member's phone or e-mail as stored (so that look-ups match however it was typed)."""

    kind: str  # email | phone (the member identifier's kind)
    value: str

    @property
    def channel(self) -> CodeChannel:
        return CodeChannel.EMAIL if self.kind == "email" else CodeChannel.SMS


class ChannelUnavailable(InvalidInput):
    """No code can go to this address: the server sends nothing on its channel (no SMS
    provider, no e-mail). Said of the kind of address typed, never of whether it is a
    member's."""

    def __init__(self, channel: CodeChannel, *, field: str) -> None:
        other = "phone number" if channel is CodeChannel.EMAIL else "e-mail address"
        super().__init__(f"codes are not sent by {channel} here: use your {other}", field=field)
        self.channel = channel


def check_channel(
    address: Address, channels: Collection[CodeChannel], *, field: str = "address"
) -> None:
    """``ChannelUnavailable`` (naming ``field``) unless a code can go to ``address``."""
    if address.channel not in channels:
        raise ChannelUnavailable(address.channel, field=field)


def parse_address(raw: str) -> Address:
    """The phone or e-mail a member typed, in its stored form; 422 naming ``address`` if it
    is neither."""
    text = raw.strip()
    try:
        if "@" in text:
            return Address("email", normalise_email(text, field="address"))
        return Address("phone", normalise_phone(text))
    except InvalidInput:
        raise InvalidInput(
            f"{raw!r} is neither a phone number nor an e-mail address", field="address"
        ) from None


def addresses_of(email: str | None, phone: str | None) -> list[Address]:
    """The e-mail and the phone of a registration in their stored form, the e-mail first
    (a code is sent there); 422 naming ``email`` or ``phone`` if one is not valid."""
    typed = []
    if email:
        typed.append(Address("email", normalise_email(email)))
    if phone:
        typed.append(Address("phone", normalise_phone(phone)))
    return typed


# Marketing channels and the address each needs (push needs none: it is this device's).
ADDRESS_OF_CHANNEL = {"email": "email", "sms": "phone", "push": None}


def sign_up_consents(ticked: Sequence[str], typed: Sequence[Address]) -> tuple[str, ...]:
    """The marketing channels ticked at sign-up that can be granted: a channel for which no
    address was given (SMS without a phone) is ignored."""
    kinds = {a.kind for a in typed}
    return tuple(
        channel
        for channel in ADDRESS_OF_CHANNEL
        if channel in ticked
        and (ADDRESS_OF_CHANNEL[channel] is None or ADDRESS_OF_CHANNEL[channel] in kinds)
    )


@dataclass(frozen=True, slots=True)
class OnUse:
    """What entering a code does besides signing in, kept with the code until then.

    ``consents``: the marketing channels ticked at sign-up, granted (source ``app``) only
    once the member has shown the address is theirs. ``new_address``: the e-mail or phone
    the code confirms (the profile's change, sent to that address); such a code changes the
    member's address and never signs anyone in."""

    consents: tuple[str, ...] = ()
    new_address: Address | None = None

    @property
    def changes_address(self) -> bool:
        return self.new_address is not None

    def stored(self) -> dict[str, Any] | None:
        if self.new_address is not None:
            return {"new_address": {"kind": self.new_address.kind, "value": self.new_address.value}}
        return {"consents": list(self.consents)} if self.consents else None

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> "OnUse":
        if not stored:
            return cls()
        new = stored.get("new_address")
        return cls(
            consents=tuple(str(c) for c in stored.get("consents") or ()),
            new_address=Address(str(new["kind"]), str(new["value"])) if new else None,
        )


class CodeOutcome(StrEnum):
    """What a code given to sign in turned out to be."""

    ACCEPTED = "accepted"
    WRONG = "wrong"  # not the code (the try is counted)
    NO_CODE = "no_code"  # none live: never asked for, replaced, used or expired
    EXPIRED = "expired"
    TOO_MANY = "too_many"  # its tries are used up


@dataclass(frozen=True, slots=True)
class CodeCheck:
    outcome: CodeOutcome
    member_id: UUID | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is CodeOutcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class StoredCode:
    """A sign-in code as kept: its hash only."""

    id: UUID
    member_id: UUID
    code_hash: str
    expires_at: datetime
    attempts: int
    used_at: datetime | None
    channel: str = CodeChannel.EMAIL
    on_use: OnUse = OnUse()


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def clean_code(raw: str) -> str | None:
    """The code as typed (spaces and dashes allowed, as people copy it), or None if it is
    not six digits."""
    digits = "".join(ch for ch in raw if ch not in " -\u00a0")
    return digits if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit() else None


def code_hash(code_id: UUID, code: str) -> str:
    """The code keyed by its own id: the same digits hash differently in every row, so a
    stored hash says nothing about another code."""
    return hmac.new(code_id.bytes, code.encode(), hashlib.sha256).hexdigest()


def code_matches(stored: StoredCode, code: str) -> bool:
    return hmac.compare_digest(stored.code_hash, code_hash(stored.id, code))


def code_expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=CODE_MINUTES)


def judge(stored: StoredCode | None, now: datetime) -> CodeOutcome | None:
    """Why ``stored`` cannot take a try now, if it cannot (None: it can)."""
    if stored is None or stored.used_at is not None:
        return CodeOutcome.NO_CODE
    if stored.expires_at <= now:
        return CodeOutcome.EXPIRED
    if stored.attempts >= CODE_TRIES:
        return CodeOutcome.TOO_MANY
    return None
