"""What the message store holds, as the rest of messaging reads it: plain rows, no I/O."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class MessageRow:
    id: UUID
    program_id: UUID
    member_id: UUID | None
    kind: str
    purpose: str
    channel: str
    dedupe_key: str
    language: str
    to_address: str | None
    subject: str | None
    body: str
    html: str | None
    link: str | None
    extra: dict[str, str]
    status: str
    error: str | None
    attempts: int
    due_at: datetime | None
    broadcast_id: UUID | None
    provider_id: str | None
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None
    clicked_at: datetime | None


@dataclass(frozen=True)
class StatusRow:
    status: str
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class ConsentRow:
    channel: str
    purpose: str
    status: str  # granted | pending | withdrawn
    source: str
    text_version: str | None
    updated_at: datetime


@dataclass(frozen=True)
class ConsentRecordRow:
    channel: str
    purpose: str
    status: str
    source: str
    text_version: str | None
    detail: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class TemplateRow:
    kind: str
    language: str
    version: int
    parts: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class SubscriptionRow:
    id: UUID
    member_id: UUID
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None
    created_at: datetime


@dataclass(frozen=True)
class BroadcastRow:
    id: UUID
    program_id: UUID
    name: str
    kind: str
    variables: dict[str, Any]
    channels: list[str]
    status: str
    scheduled_at: datetime
    total: int
    created_at: datetime
    finished_at: datetime | None
    holdout_percent: int = 0


@dataclass(frozen=True)
class Recipient:
    """What composing a message needs of a member."""

    id: UUID
    program_id: UUID
    name: str | None
    email: str | None
    phone: str | None
    language: str | None
    timezone: str | None
    status: str


@dataclass(frozen=True)
class SuppressionRow:
    channel: str
    address: str
    reason: str  # bounce, complaint, manual
    detail: str | None
    message_id: UUID | None
    created_at: datetime
