from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK


class RedemptionAllocation(Base):
    """How much of which lot a hold took, so a void or partial capture can give it back."""

    __tablename__ = "redemption_allocations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    redemption_id: Mapped[UUID] = mapped_column(ForeignKey("redemptions.id"), index=True)
    member_id: Mapped[UUID] = mapped_column()
    lot_id: Mapped[UUID] = mapped_column(ForeignKey("lots.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
