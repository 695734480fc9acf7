from uuid import UUID

from sqlalchemy import ForeignKey, Index, false, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class BroadcastRecipient(Base):
    """A member a broadcast is for; ``done`` once their messages exist. A worker that dies
    mid-broadcast leaves the rest not done, and the messages' dedupe keys make a chunk done
    twice harmless. A member held back (``holdout``) is recorded as done at once."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        Index(
            "ix_broadcast_recipients_todo",
            "broadcast_id",
            "member_id",
            postgresql_where=text("NOT done"),
            sqlite_where=text("NOT done"),
        ),
    )

    broadcast_id: Mapped[UUID] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    done: Mapped[bool] = mapped_column(default=False)
    # Held back: in the audience, sent nothing (done from the start), the broadcast's
    # control group.
    holdout: Mapped[bool] = mapped_column(default=False, server_default=false())
