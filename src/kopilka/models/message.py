from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Message(Base):
    """One message to one member on one channel, rendered when it was made.

    Unique per (program, member, channel, dedupe key): an event seen twice, a broadcast
    resumed, an API call repeated make one message. ``status``: queued → sent → delivered | read |
    clicked, or failed, bounced, skipped (not sent, ``error`` says why). ``due_at`` is when
    the sender takes a queued message next (quiet hours, back-off, and its lease while a
    sender has it in hand).
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("program_id", "member_id", "channel", "dedupe_key"),
        Index("ix_messages_member", "member_id", "created_at", "id"),
        Index("ix_messages_program", "program_id", "created_at", "id"),
        Index("ix_messages_broadcast", "broadcast_id", "status"),
        Index("ix_messages_provider", "channel", "provider_id"),
        Index(
            "ix_messages_due",
            "due_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str | None] = mapped_column(String(2000))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    # What the sender needs beyond the text: the push subscription's keys, the unsubscribe link.
    extra: Mapped[dict[str, str]] = mapped_column(JSONType, server_default=text("'{}'"))
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime | None]
    broadcast_id: Mapped[UUID | None] = mapped_column()
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
