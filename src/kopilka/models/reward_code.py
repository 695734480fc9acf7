from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class RewardCode(Base):
    """A code of a digital reward's pool (an early-access key, a download code), handed to
    the redemption that claims it."""

    __tablename__ = "reward_codes"
    __table_args__ = (
        UniqueConstraint("reward_id", "code"),
        Index(
            "ix_reward_codes_free",
            "reward_id",
            postgresql_where=text("redemption_id IS NULL"),
            sqlite_where=text("redemption_id IS NULL"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    reward_id: Mapped[UUID] = mapped_column(ForeignKey("rewards.id"))
    code: Mapped[str] = mapped_column(String(200))
    redemption_id: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime]
