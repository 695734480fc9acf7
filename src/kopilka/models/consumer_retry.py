from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class ConsumerRetry(Base):
    """An event a consumer has not handled yet although its checkpoint passed it.

    ``retrying``: it failed and is tried again at ``next_attempt_at``; ``waiting``: an
    earlier event of the same member (``member_key``: the member, or the program for
    program-wide events) is retrying, so this one waits to keep the member's order;
    ``parked``: it failed ``attempts`` times and waits for a replay, no longer holding the
    member's later events back.
    """

    __tablename__ = "consumer_retries"
    __table_args__ = (
        Index("ix_consumer_retries_partition", "consumer", "partition", "seq"),
        Index("ix_consumer_retries_member", "consumer", "member_key", "seq"),
    )

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    partition: Mapped[int] = mapped_column(SmallInteger)
    member_key: Mapped[UUID] = mapped_column()
    event_id: Mapped[UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(10))  # retrying | waiting | parked
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
