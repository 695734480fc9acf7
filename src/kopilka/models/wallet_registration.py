from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class WalletRegistration(Base):
    """A device that keeps a member's Apple Wallet pass current (Apple's pass web service):
    one row per device and pass, with the token APNs pushes an update to."""

    __tablename__ = "wallet_registrations"
    __table_args__ = (
        Index("ix_wallet_registrations_device", "device_library_id", "pass_type_identifier"),
    )

    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    device_library_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    pass_type_identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    program_id: Mapped[UUID]
    push_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
