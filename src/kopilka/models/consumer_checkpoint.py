from datetime import datetime

from sqlalchemy import BigInteger, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class ConsumerCheckpoint(Base):
    """How far one consumer has read one partition of the outbox.

    Every event of the partition with ``seq <= position`` was handled, or waits in
    ``consumer_retries``. A worker leases a partition by locking this row (``FOR UPDATE SKIP
    LOCKED``) and moves ``position`` in the transaction that holds the consumer's writes.
    ``retry_at``/``attempts``/``last_error`` hold a consumer that halts on failure (a sink
    such as NATS) back from the whole partition until the retry time.
    """

    __tablename__ = "consumer_checkpoints"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    partition: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
