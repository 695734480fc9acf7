from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, BigIntPK, JSONType


class OutboxEvent(Base):
    """A domain event written in the same transaction as the change it describes and
    published only after commit."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The stamper's work: committed rows not yet given a delivery sequence.
        Index(
            "ix_outbox_unstamped",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
        # A consumer reads one partition at a time in delivery order. These indexes cover
        # stamped rows only: a row written at the till touches none of them.
        Index(
            "ix_outbox_partition_seq",
            "partition",
            "seq",
            postgresql_where=text("seq IS NOT NULL"),
            sqlite_where=text("seq IS NOT NULL"),
        ),
        Index(
            "ix_outbox_seq",
            "seq",
            unique=True,
            postgresql_where=text("seq IS NOT NULL"),
            sqlite_where=text("seq IS NOT NULL"),
        ),
        # Stamped events some consumer has not had yet (``published_at`` is set when all
        # have): the worker marks them by partition and sequence.
        Index(
            "ix_outbox_undelivered",
            "partition",
            "seq",
            postgresql_where=text("seq IS NOT NULL AND published_at IS NULL"),
            sqlite_where=text("seq IS NOT NULL AND published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # The event's own id: what consumers deduplicate on, and webhooks' ``webhook-id``.
    event_id: Mapped[UUID] = mapped_column(unique=True)
    program_id: Mapped[UUID] = mapped_column()
    member_id: Mapped[UUID | None] = mapped_column()
    topic: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    # When every consumer of the worker had the event (``docs/worker.md``).
    published_at: Mapped[datetime | None]
    # Given after commit by the worker's stamper, serialized: a gap-free delivery order in
    # which no row can appear behind a position a consumer has already passed.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    # crc32 of member_id (or program_id) modulo the worker's partitions: a member's events
    # share one partition, delivered in ``seq`` order.
    partition: Mapped[int | None] = mapped_column(SmallInteger)
