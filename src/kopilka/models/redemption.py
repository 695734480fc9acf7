from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class Redemption(Base):
    """Points spent in one step (``completed``) or held, then ``captured``, ``voided`` or
    ``expired`` (a hold nobody captured in time)."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index(
            "ix_redemptions_open_holds",
            "hold_expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        Index("ix_redemptions_member", "member_id", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"))
    currency: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(200))
    hold_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
