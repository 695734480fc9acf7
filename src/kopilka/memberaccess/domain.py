"""Pure rules of members' sessions: tokens and how long they last."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

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
