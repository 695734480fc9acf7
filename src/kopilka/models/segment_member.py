from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class SegmentMember(Base):
    """A member in a segment now (dynamic: as last evaluated; static: as uploaded)."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_member", "member_id", "segment_id"),)

    segment_id: Mapped[UUID] = mapped_column(ForeignKey("segments.id"), primary_key=True)
    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    entered_at: Mapped[datetime]
