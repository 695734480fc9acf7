from datetime import datetime
from uuid import UUID

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class JobRun(Base):
    """The last run of one scheduled job for one program.

    ``period`` names the run (the program's local date for a daily job, the start time for a
    frequent one): a worker that finds the period already run successfully does not run it
    again, whichever worker ran it.
    """

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(10))  # running | ok | failed
    detail: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(default=0)
