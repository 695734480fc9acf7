from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class WidgetSession(Base):
    """A short session of the web-shop widget for one member, asked for by the shop's server;
    only a SHA-256 hash of its token is stored. ``max_points`` (None: no cap besides the
    balance) bounds the points the widget may put on hold with it, ``points_held`` counts
    those it has."""

    __tablename__ = "widget_sessions"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID]
    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    max_points: Mapped[int | None] = mapped_column(BigInteger)
    points_held: Mapped[int] = mapped_column(BigInteger)
