from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK


class WebhookAttempt(Base):
    """One POST of a delivery: what the receiver answered, how long it took, what failed."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(Text)  # the first 1,000 characters
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(String(1000))
    succeeded: Mapped[bool]
