from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class PushSubscriptionRow(Base):
    """A browser's web-push subscription of a member: where to post and the keys to
    encrypt for. Removed when the push service says it has ended (404, 410)."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        UniqueConstraint("member_id", "endpoint"),
        Index("ix_push_subscriptions_program", "program_id", "member_id"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column()
    endpoint: Mapped[str] = mapped_column(String(2000))
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
